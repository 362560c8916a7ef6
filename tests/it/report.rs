//! `report`: the HTML page. Its figures must be the JSON's (the page is rendered from the same
//! structs), every string from a disk escaped, nothing fetched from anywhere; and a real
//! browser (headless Chromium) must render it without console errors and with charts of
//! non-zero size.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::util::{fails, json, ok, process_dir, require, root, sh, tempdir, unpack_ntfs};

/// A page with every section of one chain: the NTFS chain (blame), with a history of six
/// weekly points (five imported, the scan itself the sixth) so the forecast is drawn.
fn full_page(dir: &Path) -> (PathBuf, PathBuf) {
    let delta = unpack_ntfs("blame", dir);
    let db = dir.join("history.sqlite");
    let csv = dir.join("history.csv");
    std::fs::write(
        &csv,
        "timestamp,disk,bytes\n\
         2026-10-05T08:00:00Z,vdi-01,1048576\n\
         2026-10-12T08:00:00Z,vdi-01,2097152\n\
         2026-10-19T08:00:00Z,vdi-01,3145728\n\
         2026-10-26T08:00:00Z,vdi-01,4194304\n\
         2026-11-02T08:00:00Z,vdi-01,5767168\n",
    )
    .unwrap();
    ok([
        "import".as_ref(),
        csv.as_os_str(),
        "--db".as_ref(),
        db.as_os_str(),
    ]);
    ok([
        "scan".as_ref(),
        delta.as_os_str(),
        "--record".as_ref(),
        "--db".as_ref(),
        db.as_os_str(),
        "--disk".as_ref(),
        "vdi-01".as_ref(),
        "--at".as_ref(),
        "2026-11-09T08:00:00Z".as_ref(),
    ]);
    let page = dir.join("report.html");
    ok([
        "report".as_ref(),
        delta.as_os_str(),
        "--db".as_ref(),
        db.as_os_str(),
        "--disk".as_ref(),
        "vdi-01".as_ref(),
        "-o".as_ref(),
        page.as_os_str(),
    ]);
    (page, delta)
}

fn section_ids(html: &str) -> Vec<String> {
    html.split("<section id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

/// Nothing in the page may make a browser fetch anything.
fn assert_self_contained(html: &str) {
    // SVG's namespace is a name, never fetched.
    let html = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for needle in [
        " src=", " href=", "<link", "@import", "url(", "http://", "https://", "<img",
    ] {
        assert!(
            !html.contains(needle),
            "the page refers to something outside it ({needle:?})"
        );
    }
}

fn title_bytes(html: &str) -> Vec<u64> {
    html.split("title=\"")
        .skip(1)
        .filter_map(|s| s.split(" bytes\"").next())
        .filter_map(|s| s.parse().ok())
        .collect()
}

#[test]
fn report_of_a_chain_has_every_section_and_the_json_figures() {
    let dir = tempdir();
    let (page, delta) = full_page(dir.path());
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(
        section_ids(&html),
        [
            "verdict",
            "summary",
            "chain",
            "classes",
            "amplification",
            "profile",
            "history",
            "blame"
        ]
    );
    assert!(
        !html.contains("Not shown"),
        "a section was left out:\n{html}"
    );
    assert_self_contained(&html);
    // The page renders the scan's and blame's own figures: every class byte count of every
    // layer, the top layer's 4 KiB block counts, and the largest blame group, appear as
    // exact bytes on hover (or as counts).
    // With the store and name the page was made with, so the verdict reads the same history.
    let db = dir.path().join("history.sqlite");
    let scan: Value = json(&[
        "scan".as_ref(),
        "--json".as_ref(),
        "--db".as_ref(),
        db.as_os_str(),
        "--disk".as_ref(),
        "vdi-01".as_ref(),
        delta.as_os_str(),
    ]);
    assert!(scan["verdict"]["weeks_to_ceiling"].as_f64().is_some());
    let hover = title_bytes(&html);
    for layer in scan["chain"].as_array().unwrap() {
        for class in ["fresh", "overwritten", "identical", "zeroed"] {
            let v = layer["classes"][class].as_u64().unwrap();
            assert!(
                hover.contains(&v),
                "{class} {v} of {} missing",
                layer["path"]
            );
            let b = layer["blocks_4k"][class].as_u64().unwrap();
            assert!(html.contains(&format!("<td data-v=\"{b}\">{b}</td>")));
        }
        let a = layer["allocated_bytes"].as_u64().unwrap();
        assert!(html.contains(&format!("title=\"{a} bytes\"")));
    }
    // The verdict at the top, in the scan's words, and each remedy's bytes.
    let verdict_at = html.find("<section id=\"verdict\">").expect("verdict");
    assert!(verdict_at < html.find("<section id=\"summary\">").unwrap());
    let text = scan["verdict"]["text"].as_str().unwrap();
    let escaped = text.replace('&', "&amp;").replace('\'', "&#39;");
    assert!(html.contains(&escaped), "verdict text missing");
    for r in scan["remedies"].as_array().unwrap() {
        let b = r["bytes"]
            .as_u64()
            .expect("the NTFS chain judges every remedy");
        assert!(html.contains(&format!("<td data-v=\"{b}\">")), "{r}");
    }
    let never_used = scan["base_audit"]["never_used_bytes"].as_u64().unwrap();
    assert!(hover.contains(&never_used));
    let blame: Value = json(&["blame".as_ref(), "--json".as_ref(), delta.as_os_str()]);
    let first = &blame["groups"][0];
    assert!(html.contains(&format!("<code>{}</code>", first["path"].as_str().unwrap())));
    assert!(hover.contains(&first["bytes"].as_u64().unwrap()));
    // History: the growth chart (plotters' SVG), the forecast and its weeks.
    assert!(html.contains("Delta growth of vdi-01"));
    assert!(html.contains("6 point(s) recorded"));
    assert!(html.contains("<th>Week of</th>"));
    // Provenance.
    assert!(html.contains(&format!("<td>{}</td>", env!("CARGO_PKG_VERSION"))));
    assert!(html.contains(" report "), "command line missing");
    assert!(html.contains("<th>Time of the scan</th><td>20"));
}

#[test]
fn sections_without_data_say_why() {
    let dir = tempdir();
    let page = dir.path().join("demo.html");
    let db = dir.path().join("empty.sqlite");
    // A store without this disk: the history section is a note, not an error.
    ok([
        "import".as_ref(),
        {
            let csv = dir.path().join("h.csv");
            std::fs::write(&csv, "timestamp,disk,bytes\n2026-11-01T00:00:00Z,other,1\n").unwrap();
            csv
        }
        .as_os_str(),
        "--db".as_ref(),
        db.as_os_str(),
    ]);
    ok([
        "report".as_ref(),
        root()
            .join("testdata/demo/win10-clone-000002.vmdk")
            .as_os_str(),
        "--db".as_ref(),
        db.as_os_str(),
        "-o".as_ref(),
        page.as_os_str(),
    ]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("has no points for"), "history note missing");
    assert!(
        html.contains("blame reads NTFS volumes, and this disk has none"),
        "blame note missing"
    );
    // A missing --db is an error (readers never create a store), and no page is left behind.
    let bad = dir.path().join("bad.html");
    let err = fails(
        1,
        [
            "report".as_ref(),
            root()
                .join("testdata/demo/win10-clone-000002.vmdk")
                .as_os_str(),
            "--db".as_ref(),
            dir.path().join("nope.sqlite").as_os_str(),
            "-o".as_ref(),
            bad.as_os_str(),
        ],
    );
    assert!(err.contains("no history store at"), "{err}");
    assert!(!bad.exists());
    // A disk that is not there: exit 1, no page.
    fails(
        1,
        [
            "report".as_ref(),
            dir.path().join("missing.vmdk").as_os_str(),
            "-o".as_ref(),
            bad.as_os_str(),
        ],
    );
    assert!(!bad.exists());
}

#[test]
fn strings_from_the_disk_are_escaped() {
    let dir = tempdir();
    for f in ["win10-base.vmdk", "win10-clone-000001.vmdk"] {
        std::fs::copy(root().join("testdata/demo").join(f), dir.path().join(f)).unwrap();
    }
    // The top's name is markup; its parent is found by the hint in its descriptor.
    let top = dir.path().join("<img src=x onerror=alert(1)>&\"'.vmdk");
    std::fs::copy(root().join("testdata/demo/win10-clone-000002.vmdk"), &top).unwrap();
    let page = dir.path().join("r.html");
    ok([
        "report".as_ref(),
        top.as_os_str(),
        "-o".as_ref(),
        page.as_os_str(),
    ]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<img"), "unescaped file name in the page");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;&amp;&quot;&#39;.vmdk"));
}

/// The tree of `testdata/make-datastore.sh`, built once per test run (it takes seconds).
fn datastore() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        require("qemu-img");
        require("qemu-io");
        let dir = process_dir("report-ds");
        sh(Command::new("bash")
            .arg(root().join("testdata/make-datastore.sh"))
            .arg(&dir));
        dir
    })
}

fn datastore_page(dir: &Path) -> PathBuf {
    let page = dir.join("ds.html");
    ok([
        "report".as_ref(),
        datastore().join("lun2").as_os_str(),
        "--growth-per-vm".as_ref(),
        "2GiB".as_ref(),
        "--window".as_ref(),
        "8h".as_ref(),
        "--lun-size".as_ref(),
        "2TiB".as_ref(),
        "-o".as_ref(),
        page.as_os_str(),
    ]);
    page
}

#[test]
fn report_of_a_datastore_folder_has_the_lun_model_and_its_chart() {
    let dir = tempdir();
    let page = datastore_page(dir.path());
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(
        section_ids(&html),
        ["summary", "luns", "chain", "sensitivity", "blame"]
    );
    assert_self_contained(&html);
    let lun: Value = json(&[
        "lun".as_ref(),
        datastore().join("lun2").as_os_str(),
        "--growth-per-vm".as_ref(),
        "2GiB".as_ref(),
        "--window".as_ref(),
        "8h".as_ref(),
        "--lun-size".as_ref(),
        "2TiB".as_ref(),
        "--json".as_ref(),
    ]);
    let l = &lun["luns"][0];
    let rec = l["vms_per_lun"]["recommended"].as_u64().unwrap();
    let vms = l["inputs"]["vms"].as_u64().unwrap();
    assert!(
        html.contains(&format!("<td>lun2</td><td>{vms}</td><td>{rec}</td>")),
        "VMs {vms} and recommended VMs per LUN {rec} missing"
    );
    assert!(html.contains(&format!("at most <b>{rec} VMs</b>")));
    assert!(html.contains("busy fraction"), "sensitivity chart missing");
    // lun2 mixes SESparse and hosted deltas: the model gives each disk its format's
    // increment, so no single-increment line is "the model's" and the limit marked is the
    // model's own (issue 17: it showed 16 MiB's 7500 beside a table of 703).
    let lock = l["vms_per_lun"]["lock_limit"].as_u64().unwrap();
    assert!(!html.contains("(the model&#39;s)") && !html.contains("(the model's)"));
    assert!(
        html.contains("lock limit of the model"),
        "no model limit marked"
    );
    assert!(
        html.contains(&format!(" {lock}")),
        "the model's limit {lock} not on the chart"
    );
    for format in ["seSparse", "hostedSparse"] {
        assert!(html.contains(&format!("<td>{format}</td>")), "{format}");
    }
}

/// Chromium's headless run: (stderr's console lines, the DOM after scripts ran).
fn chromium(page: &Path, screenshot: &Path, profile: &Path) -> (Vec<String>, String) {
    require("chromium");
    let url = format!("file://{}", page.display());
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        // Any fetch from the network fails loudly (a console error) instead of waiting.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=0",
    ];
    let run = |extra: &[String], sub: &str| {
        let out = Command::new("chromium")
            .args(common)
            .arg(format!("--user-data-dir={}", profile.join(sub).display()))
            .args(extra)
            .arg(&url)
            .output()
            .expect("run chromium");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let shot = run(
        &[
            format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,3300".into(),
        ],
        "a",
    );
    let dom = run(&["--dump-dom".into()], "b");
    let console: Vec<String> = [&shot.stderr, &dom.stderr]
        .iter()
        .flat_map(|e| {
            String::from_utf8_lossy(e)
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| l.contains(":CONSOLE"))
        .collect();
    (console, String::from_utf8_lossy(&dom.stdout).into_owned())
}

/// The Bytes column of the blame table, row by row (its first cell with a `data-v`).
fn blame_bytes(html: &str) -> Vec<u64> {
    let section = html
        .split("<section id=\"blame\">")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .expect("blame section");
    let body = section.split("<tbody>").nth(1).expect("blame rows");
    body.split("<tr>")
        .skip(1)
        .filter_map(|row| {
            row.split("<td data-v=\"")
                .nth(1)
                .and_then(|v| v.split('"').next())
                .and_then(|v| v.parse().ok())
        })
        .collect()
}

/// Width and height attributes of every `<svg>` in the DOM.
fn svg_sizes(dom: &str) -> Vec<(String, f64, f64)> {
    dom.split("<svg")
        .skip(1)
        .map(|s| {
            let tag = s.split('>').next().unwrap_or("");
            let attr = |name: &str| {
                tag.split(&format!(" {name}=\""))
                    .nth(1)
                    .and_then(|v| v.split('"').next())
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            (tag.to_string(), attr("width"), attr("height"))
        })
        .collect()
}

#[test]
fn a_browser_renders_the_pages_without_errors() {
    let dir = tempdir();
    let profile = dir.path().join("profile");
    // A page that throws proves the console check can fail.
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>",
    )
    .unwrap();
    let (console, _) = chromium(&bad, &dir.path().join("bad.png"), &profile);
    assert!(
        console.iter().any(|l| l.contains("undefinedFunction")),
        "the console check does not see errors: {console:?}"
    );

    let (page, _) = full_page(dir.path());
    let ds = datastore_page(dir.path());
    for (page, sections, charts) in [
        (
            &page,
            &[
                "verdict",
                "summary",
                "chain",
                "classes",
                "amplification",
                "profile",
                "history",
                "blame",
            ][..],
            1,
        ),
        (
            &ds,
            &["summary", "luns", "chain", "sensitivity", "blame"][..],
            1,
        ),
    ] {
        let png = page.with_extension("png");
        let (console, dom) = chromium(page, &png, &profile);
        assert!(
            console.is_empty(),
            "{}: console: {console:?}",
            page.display()
        );
        for id in sections {
            assert!(
                dom.contains(&format!("<section id=\"{id}\">")),
                "{}: section {id} missing from the rendered DOM",
                page.display()
            );
        }
        let sizes = svg_sizes(&dom);
        assert!(!sizes.is_empty());
        for (tag, w, h) in &sizes {
            assert!(*w > 0.0 && *h > 0.0, "an SVG of zero size: <svg{tag}>");
        }
        // The plotters charts (1200 x 700).
        let big = sizes
            .iter()
            .filter(|(_, w, h)| *w >= 1000.0 && *h >= 600.0)
            .count();
        assert!(big >= charts, "{}: {big} chart(s)", page.display());
        // The screenshot is a PNG of the window's size.
        let png = std::fs::read(&png).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let (w, h) = (
            u32::from_be_bytes(png[16..20].try_into().unwrap()),
            u32::from_be_bytes(png[20..24].try_into().unwrap()),
        );
        assert_eq!((w, h), (1280, 3300));
        // A blank page compresses to a few KB; this one has charts and tables.
        assert!(
            png.len() > 50_000,
            "{}: a near-empty screenshot",
            page.display()
        );
    }
    // The sorting script: a click on the blame table's "Bytes" heading sorts its rows by
    // exact bytes, ascending (the page lists them largest first).
    let html = std::fs::read_to_string(&page).unwrap();
    let before = blame_bytes(&html);
    assert!(before.windows(2).all(|w| w[0] >= w[1]) && before.len() > 3);
    let clicked = dir.path().join("clicked.html");
    std::fs::write(
        &clicked,
        html.replace(
            "</body>",
            "<script>document.querySelectorAll(\"#blame thead th\")[2].click();</script></body>",
        ),
    )
    .unwrap();
    let (console, dom) = chromium(&clicked, &dir.path().join("clicked.png"), &profile);
    assert!(console.is_empty(), "{console:?}");
    let after = blame_bytes(&dom);
    let mut sorted = before.clone();
    sorted.sort_unstable();
    assert_eq!(after, sorted, "the table did not sort by bytes");
    if let Ok(out) = std::env::var("DELTASCOPE_REPORT_SCREENSHOT") {
        std::fs::copy(page.with_extension("png"), out).unwrap();
    }
}

/// Laid out by Chromium in a window `width` pixels wide: each table whose scroll box is wider
/// than the box itself, as "section id: table's first heading: content width / box width",
/// and where the first LUN answer's bottom lies (pixels from the top of the page).
fn overflowing_tables(page: &Path, width: u32, profile: &Path) -> (Vec<String>, f64) {
    require("chromium");
    let probe = page.with_extension(format!("probe{width}.html"));
    let html = std::fs::read_to_string(page).unwrap();
    std::fs::write(
        &probe,
        html.replace(
            "</body>",
            "<script>var o=[];document.querySelectorAll(\".scroll\").forEach(function(d){\
             if(d.scrollWidth>d.clientWidth){o.push(d.closest(\"section\").id+\": \"+\
             d.querySelector(\"th\").textContent+\": \"+d.scrollWidth+\" / \"+d.clientWidth);}});\
             var a=document.querySelector(\"ul.answer\");\
             document.body.setAttribute(\"data-over\",o.join(\";\"));\
             document.body.setAttribute(\"data-answer\",a?a.getBoundingClientRect().bottom:-1);\
             </script></body>",
        ),
    )
    .unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            &format!("--window-size={width},900"),
            &format!(
                "--user-data-dir={}",
                profile.join(format!("w{width}")).display()
            ),
            "--dump-dom",
        ])
        .arg(format!("file://{}", probe.display()))
        .output()
        .expect("run chromium");
    assert!(out.status.success());
    let dom = String::from_utf8_lossy(&out.stdout);
    let attr = |name: &str| {
        dom.split(&format!("{name}=\""))
            .nth(1)
            .and_then(|v| v.split('"').next())
            .unwrap_or_else(|| panic!("{name} missing: the probe did not run"))
            .to_string()
    };
    let over = attr("data-over");
    let over = over
        .split(';')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    (over, attr("data-answer").parse().unwrap())
}

/// Issue 17: at 1280 and 1920 px the LUN tables ran off the right edge ("Capacity limit" and
/// "Recommended VMs per LUN" cut off) and a failed disk's error wrapped into nine lines of
/// a table cell. The answer is now in the first screen, no table of the page needs sideways
/// scrolling, and errors are listed under the table at full width.
#[test]
fn the_datastore_page_fits_the_screen_and_answers_first() {
    let dir = tempdir();
    let page = dir.path().join("both.html");
    // lun1's broken disk fails (exit 1); the page is written all the same.
    fails(
        1,
        [
            "report".as_ref(),
            datastore().as_os_str(),
            "--growth-per-vm".as_ref(),
            "2GiB".as_ref(),
            "--window".as_ref(),
            "8h".as_ref(),
            "--lun-size".as_ref(),
            "2TiB".as_ref(),
            "-o".as_ref(),
            page.as_os_str(),
        ],
    );
    let html = std::fs::read_to_string(&page).unwrap();
    // The broken disk's error is a list item, not a cell.
    let error = "parent not found: parentFileNameHint names";
    let line = html.lines().find(|l| l.contains(error)).expect("the error");
    assert!(line.starts_with("<li class=\"warn\">"), "{line}");
    assert!(html.contains("at most <b>"), "no answer sentence");
    for width in [1280, 1920] {
        let (over, answer) = overflowing_tables(&page, width, &dir.path().join("profile"));
        assert!(over.is_empty(), "{width} px: {over:?}");
        assert!(
            (0.0..900.0).contains(&answer),
            "{width} px: the answer ends at {answer} px, below the first screen"
        );
    }
}
