//! The control socket's request line (docs/control-protocol.md) on arbitrary bytes: the
//! parse `handle_line` makes before it runs anything (`server::parse_request`), the
//! operation lookup, and the argument readers every operation uses (`ops::args`) on the
//! arguments each operation documents. Running an operation needs a running daemon's state;
//! the end-to-end tests drive those. Checks: no panic; an error reply is one line of JSON
//! with `ok: false`, the protocol version and a message.
#![no_main]

use appliance::ops::{PROTOCOL_VERSION, args};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    match appliance::server::parse_request(data) {
        Err(reply) => {
            let line = reply.to_string();
            assert!(!line.contains('\n'), "a reply is one line: {line}");
            assert_eq!(reply["ok"], Value::Bool(false));
            assert_eq!(reply["v"], Value::from(PROTOCOL_VERSION));
            assert!(reply["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
        Ok(req) => {
            let Some(op) = appliance::dispatch::all()
                .into_iter()
                .find(|o| o.name == req.cmd)
            else {
                return;
            };
            if let Some(doc) = &op.cli {
                for a in doc.args {
                    let _ = args::str(&req.args, a.key);
                    let _ = args::opt_str(&req.args, a.key);
                    if let Err(e) = args::opt_u64(&req.args, a.key) {
                        assert!(e.to_string().contains(a.key), "{e}");
                    }
                }
            }
        }
    }
});
