//! Embeds the web phone's JsSIP bundle in the `strait` binary.
//!
//! `controlplane/web/build/jssip.js` is built with npm (`npm ci && npm run
//! build` in `controlplane/web`; `scripts/run.sh` and `scripts/e2e.sh` do it).
//! When it exists it is copied to `OUT_DIR/jssip.js`, which the transport
//! layer includes; when it does not, a small placeholder script takes its
//! place, so the crate still builds and the page says what is missing.

use std::path::{Path, PathBuf};
use std::{env, fs};

/// Served instead of the bundle when it was not built.
const PLACEHOLDER: &str = r#"// Placeholder: the JsSIP bundle was not built when this strait binary was compiled.
(function () {
  'use strict';
  var text = 'JsSIP bundle not built: run npm ci && npm run build in controlplane/web, then rebuild strait';
  window.STRAIT_JSSIP_MISSING = text;
  var p = document.createElement('p');
  p.id = 'jssip-missing';
  p.style.cssText = 'background:#fdd;border:1px solid #c00;padding:.6rem;font-weight:600';
  p.textContent = text;
  document.body.insertBefore(p, document.body.firstChild);
  var status = document.getElementById('status');
  if (status) status.textContent = text;
})();
"#;

fn main() {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("jssip.js");
    let bundle = manifest.join("web").join("build").join("jssip.js");
    println!("cargo:rerun-if-changed=build.rs");
    if is_nonempty_file(&bundle) {
        println!("cargo:rerun-if-changed=web/build/jssip.js");
        fs::copy(&bundle, &out).expect("copying web/build/jssip.js into OUT_DIR");
    } else {
        // A missing file would make cargo rerun this script (and rebuild the
        // crate) on every build; the web directory (a few hundred files with
        // node_modules) notices the bundle appearing instead.
        println!("cargo:rerun-if-changed=web");
        println!(
            "cargo:warning=controlplane/web/build/jssip.js is missing: the web phone page will say so \
             (run npm ci && npm run build in controlplane/web)"
        );
        fs::write(&out, PLACEHOLDER).expect("writing the placeholder into OUT_DIR");
    }
}

fn is_nonempty_file(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() > 0)
}
