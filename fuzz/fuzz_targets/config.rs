//! The configuration parser on arbitrary text (`registry::parse`: the TOML, the core
//! sections' validation and every network function's). Checks: no panic; every error names
//! the file and a line:col inside the text; every accepted configuration gives EAL
//! arguments that keep DPDK off the PCI bus or name the devices it may use.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match appliance::registry::parse("fuzz.toml", text) {
        Err(e) => {
            let lines = text.matches('\n').count() + 1;
            assert_eq!(e.file, "fuzz.toml", "{e}");
            assert!(e.line >= 1 && e.line <= lines, "line out of the text: {e}");
            let line = text.split('\n').nth(e.line - 1).unwrap_or("");
            assert!(
                e.col >= 1 && e.col <= line.len() + 1,
                "column out of the line: {e}"
            );
            assert!(
                e.to_string()
                    .starts_with(&format!("fuzz.toml:{}:{}: ", e.line, e.col))
            );
        }
        Ok((c, _warnings)) => {
            let args = c.eal_args();
            assert!(
                dpdk::eal::pci_policy_ok(&args),
                "EAL may scan the PCI bus: {args:?}"
            );
        }
    }
});
