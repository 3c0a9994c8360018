//! The Debian package (`scripts/package-deb.sh`), built from the binaries of this test run:
//! what it installs, what it depends on, and that what it installs works (the shipped config
//! validates with the shipped binary; the man page and completions are there).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn deb_package_installs_binaries_unit_config_docs_and_man_pages() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_pollfwd")).parent().unwrap();
    assert!(bin_dir.join("pollfwdctl").exists());
    let tmp = std::env::temp_dir().join(format!("pollfwd-deb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let out = run(Command::new(repo().join("scripts/package-deb.sh"))
        .arg("--bin-dir")
        .arg(bin_dir)
        .arg("--out")
        .arg(tmp.join("dist")));
    let deb = PathBuf::from(out.trim());
    assert!(deb.starts_with(tmp.join("dist")) && deb.exists(), "{out}");
    assert!(
        deb.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("pollfwd_"),
        "{}",
        deb.display()
    );

    let list = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    for path in [
        "./usr/bin/pollfwd",
        "./usr/bin/pollfwdctl",
        "./usr/lib/systemd/system/pollfwd.service",
        "./usr/lib/sysusers.d/pollfwd.conf",
        "./usr/lib/tmpfiles.d/pollfwd.conf",
        "./etc/pollfwd/pollfwd.toml",
        "./usr/share/doc/pollfwd/examples/lab-pcap.toml",
        "./usr/share/doc/pollfwd/examples/nic-10g.toml",
        "./usr/share/doc/pollfwd/operations.md",
        "./usr/share/doc/pollfwd/README.md",
        "./usr/share/doc/pollfwd/copyright",
        "./usr/share/man/man1/pollfwdctl.1.gz",
        "./usr/share/man/man1/pollfwdctl-route-add.1.gz",
        "./usr/share/bash-completion/completions/pollfwdctl",
        "./usr/share/zsh/vendor-completions/_pollfwdctl",
    ] {
        assert!(
            list.lines().any(|l| l.ends_with(&format!(" {path}"))),
            "{path} not in the package:\n{list}"
        );
    }
    let depends = run(Command::new("dpkg-deb")
        .args(["-f"])
        .arg(&deb)
        .arg("Depends"));
    for dep in [
        "librte-eal23",
        "librte-ethdev23",
        "librte-mempool-ring23",
        "systemd",
    ] {
        assert!(depends.contains(dep), "Depends lacks {dep}: {depends}");
    }
    let conffiles = run(Command::new("dpkg-deb")
        .args(["--info"])
        .arg(&deb)
        .arg("conffiles"));
    assert_eq!(conffiles.trim(), "/etc/pollfwd/pollfwd.toml");

    // What it installs: the unit as in the tree, a config the packaged pollfwd accepts, man
    // pages man can read, maintainer scripts sh can parse.
    let root = tmp.join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    assert_eq!(
        std::fs::read(root.join("usr/lib/systemd/system/pollfwd.service")).unwrap(),
        std::fs::read(repo().join("packaging/pollfwd.service")).unwrap()
    );
    let check = run(Command::new(root.join("usr/bin/pollfwd"))
        .arg("--check")
        .arg("--config")
        .arg(root.join("etc/pollfwd/pollfwd.toml")));
    assert!(
        check.contains("OK (2 port(s), 1 worker lcore(s))"),
        "{check}"
    );
    let page = run(Command::new("zcat").arg(root.join("usr/share/man/man1/pollfwdctl.1.gz")));
    assert!(page.contains(".TH pollfwdctl 1"), "{page}");
    let ctrl = tmp.join("ctrl");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&ctrl));
    for script in ["postinst", "prerm", "postrm"] {
        run(Command::new("sh").arg("-n").arg(ctrl.join(script)));
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}
