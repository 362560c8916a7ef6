//! `completions` and `man`: generated from the clap definitions, so every subcommand must be
//! in each; and every subcommand's `--help` shows an example.

use crate::util::{fails, ok, require, root};

const SUBCOMMANDS: &[&str] = &[
    "info",
    "map",
    "scan",
    "blame",
    "history",
    "import",
    "forecast",
    "chart",
    "lun",
    "report",
    "db",
    "completions",
    "man",
];

#[test]
fn completions_name_every_subcommand_in_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef deltascope"),
        ("fish", "complete -c deltascope"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let script = ok(["completions", shell]);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
        // Options of subcommands are completed too.
        assert!(
            script.contains("growth-per-vm"),
            "{shell}: no --growth-per-vm"
        );
    }
    fails(2, ["completions", "tcsh"]);
}

#[test]
fn bash_accepts_the_completion_script() {
    let script = ok(["completions", "bash"]);
    let out = std::process::Command::new("bash")
        .arg("-n")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn man_page_lists_every_subcommand() {
    let man = ok(["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH deltascope"),
        "{}",
        &man[..200.min(man.len())]
    );
    assert!(man.contains(".SH SUBCOMMANDS"));
    for sub in SUBCOMMANDS {
        assert!(
            man.contains(&format!("deltascope\\-{sub}")),
            "man page lacks {sub}"
        );
    }
    assert!(man.contains(".SH \"EXIT STATUS\""));
    for sub in SUBCOMMANDS {
        let page = ok(["man", sub]);
        assert!(
            page.contains(&format!(".TH deltascope-{sub} 1")),
            "man {sub}: {}",
            &page[..300.min(page.len())]
        );
        assert!(
            page.contains(".SH \"EXAMPLES\""),
            "man {sub} has no example"
        );
    }
    let err = fails(2, ["man", "nosuch"]);
    assert!(err.contains("there are: info"), "{err}");
}

#[test]
fn every_subcommand_help_shows_an_example() {
    for sub in SUBCOMMANDS {
        let help = ok([*sub, "--help"]);
        assert!(
            help.contains("Example"),
            "`deltascope {sub} --help` shows no example"
        );
        assert!(help.contains("deltascope "), "{sub}");
    }
    for sub in ["migrate", "check"] {
        let help = ok(["db", sub, "--help"]);
        assert!(
            help.contains("Example") && help.contains(&format!("deltascope db {sub}")),
            "`deltascope db {sub} --help` shows no example"
        );
    }
}

/// The page as `man` shows it: groff's UTF-8 output without overstriking, 80 columns.
fn rendered(roff: &str, dir: &std::path::Path) -> String {
    require("groff");
    let file = dir.join("page.1");
    std::fs::write(&file, roff).unwrap();
    let out = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-P-cbou", "-rLL=80n", "-ww"])
        .arg(&file)
        .output()
        .expect("run groff");
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "groff warns: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Issue 17: NAME said "deltascope - deltascope: ...", the exit codes and examples were
/// reflowed into broken lines, and no section listed the environment variables.
#[test]
fn man_page_keeps_tables_and_examples_and_lists_the_environment() {
    let dir = crate::util::tempdir();
    let top = rendered(&ok(["man"]), dir.path());
    let name = top.split("NAME\n").nth(1).unwrap().lines().next().unwrap();
    assert_eq!(
        name.trim(),
        "deltascope - where did a VMware delta disk's growth go?"
    );
    for line in [
        "         0  success",
        "         2  usage error",
        "         1  bad input or analysis error (corrupt or unsupported image, missing file, broken chain,",
    ] {
        assert!(top.lines().any(|l| l == line), "{line:?} not whole:\n{top}");
    }
    // Every DELTASCOPE_ variable the program reads is in ENVIRONMENT, but for test hooks
    // and the build's own.
    let env = top
        .split("\nENVIRONMENT\n")
        .nth(1)
        .and_then(|s| s.split("\nFILES\n").next())
        .expect("ENVIRONMENT before FILES");
    let mut vars = std::collections::BTreeSet::new();
    let mut stack = vec![root().join("src")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for part in text.split("DELTASCOPE_").skip(1) {
                    let v: String = part
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                        .collect();
                    if !v.is_empty() && !v.starts_with("TEST") && !v.ends_with("CODE_ID") {
                        vars.insert(format!("DELTASCOPE_{v}"));
                    }
                }
            }
        }
    }
    for v in [
        "DELTASCOPE_DB",
        "DELTASCOPE_CACHE",
        "DELTASCOPE_FONT",
        "DELTASCOPE_NO_CACHE",
    ] {
        assert!(vars.contains(v), "the scan of src/ misses {v}: {vars:?}");
    }
    for v in &vars {
        assert!(
            env.lines().any(|l| l.trim() == v.as_str()),
            "{v} not in ENVIRONMENT:\n{env}"
        );
    }
    assert!(top.contains("\nFILES\n") && top.contains("history.sqlite"));
    // A subcommand's examples, one per line however long (--help wraps them at 100
    // columns; the page must not): every line of EXAMPLES is a whole command.
    let scan = rendered(&ok(["man", "scan"]), dir.path());
    let examples: Vec<&str> = scan
        .split("\nEXAMPLES\n")
        .nth(1)
        .expect("EXAMPLES")
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    assert!(examples.len() >= 3, "{scan}");
    for e in &examples {
        assert!(e.starts_with("deltascope scan "), "{e:?} reflowed:\n{scan}");
    }
    let help = ok(["scan", "--help"]);
    assert_eq!(
        examples.len(),
        help.matches("\n  deltascope scan ").count(),
        "{help}"
    );
    assert!(scan.contains("\nEXIT STATUS\n") && scan.contains("\nSEE ALSO\n"));
}
