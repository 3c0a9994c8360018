//! Build information for `pollfwdctl version`: the git commit the daemon was built from (when
//! built from a git checkout, or given as POLLFWD_GIT_COMMIT, e.g. by a packager) and the cargo
//! profile.

use std::path::Path;
use std::process::Command;

fn git(dir: &str, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=POLLFWD_GIT_COMMIT");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let commit = std::env::var("POLLFWD_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let c = git(&dir, &["rev-parse", "HEAD"])?;
            // Re-run when HEAD moves: HEAD itself, the branch it points to, packed refs. Only
            // files that exist (a missing one would re-run the script on every build).
            let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
            if let Some(r) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
                watch.push(r);
            }
            for w in watch {
                if let Some(p) = git(
                    &dir,
                    &["rev-parse", "--path-format=absolute", "--git-path", &w],
                ) && Path::new(&p).exists()
                {
                    println!("cargo:rerun-if-changed={p}");
                }
            }
            Some(c)
        });
    if let Some(c) = commit {
        println!("cargo:rustc-env=POLLFWD_GIT_COMMIT={c}");
    }
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=POLLFWD_PROFILE={profile}");
}
