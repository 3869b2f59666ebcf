//! Builds the eBPF process sensor (`bpf/process.bpf.c`) with clang, so that the program the
//! agent loads is the source in this tree. Where clang is missing (a fresh machine), the
//! object committed beside the source is used instead, and a warning says so;
//! `bpf/build.sh` refreshes that object after the source changes, and a warning marks a
//! committed object that differs from what this clang builds.

use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = "process.bpf.c";
const COMMITTED: &str = "process.bpf.o";

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bpf");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let built = out.join(COMMITTED);
    println!("cargo::rerun-if-changed=bpf/{SOURCE}");
    println!("cargo::rerun-if-changed=bpf/{COMMITTED}");
    println!("cargo::rerun-if-env-changed=CLANG");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let committed = std::fs::read(dir.join(COMMITTED)).ok();
    match compile(&clang, &dir, &built) {
        Ok(()) => {
            let fresh = std::fs::read(&built).expect("clang wrote the object");
            if committed.as_deref() != Some(fresh.as_slice()) {
                println!(
                    "cargo::warning=bpf/{COMMITTED} differs from what {clang} builds from \
                     bpf/{SOURCE}: run crates/agent/bpf/build.sh and commit the object"
                );
            }
        }
        Err(why) => {
            let Some(committed) = committed else {
                panic!("building bpf/{SOURCE}: {why}, and no bpf/{COMMITTED} to fall back on");
            };
            println!("cargo::warning=using the committed bpf/{COMMITTED}: {why}");
            std::fs::write(&built, committed).expect("writing to OUT_DIR");
        }
    }
}

/// The flags of `bpf/build.sh`: the output does not depend on where the tree is.
fn compile(clang: &str, dir: &Path, out: &Path) -> Result<(), String> {
    let status = Command::new(clang)
        .current_dir(dir)
        .args(["-target", "bpf", "-O2", "-g", "-Wall", "-Werror"])
        .arg(format!("-fdebug-prefix-map={}=.", dir.display()))
        .args(["-fdebug-compilation-dir=.", "-c", SOURCE, "-o"])
        .arg(out)
        .status()
        .map_err(|e| format!("cannot run {clang} ({e})"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{clang} failed ({status})"))
    }
}
