//! The config loader: YAML file, then environment. Input: the file, optionally followed by a NUL and `NAME=value`
//! lines for the environment. A loaded config is validated and its derived URLs computed, as `run` and `check` do.
#![no_main]
use genesys_cloud_exporter::config::Config;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

fn file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| std::env::temp_dir().join(format!("genesys-fuzz-config-{}.yml", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (yaml, env_text) = text.split_once('\0').unwrap_or((text, ""));
    let env: HashMap<String, String> =
        env_text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    if std::fs::write(file(), yaml).is_err() {
        return;
    }
    match Config::load(Some(file()), &|k| env.get(k).cloned()) {
        Ok(cfg) => {
            for p in cfg.validate().into_iter().chain(cfg.credential_problems()) {
                drop(p.to_string());
            }
            drop((cfg.api_base_url(), cfg.login_base_url(), cfg.otlp_enabled(), format!("{cfg:?}")));
        }
        Err(e) => drop((e.to_string(), e.problems())),
    }
});
