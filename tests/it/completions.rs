//! `completions` and `man`: generated from the clap definitions, so every subcommand must be
//! in each; and every subcommand's `--help` shows an example.

use crate::util::{fails, ok};

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
    assert!(man.contains("Exit codes"));
    for sub in SUBCOMMANDS {
        let page = ok(["man", sub]);
        assert!(
            page.contains(&format!(".TH deltascope-{sub} 1")),
            "man {sub}: {}",
            &page[..300.min(page.len())]
        );
        assert!(page.contains("Example"), "man {sub} has no example");
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
