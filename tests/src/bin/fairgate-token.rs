//! Prints a JWT signed with fairgate's test keys, for the demo and benchmarks.
//!
//! `fairgate-token <tenant> [--alg HS256|RS256|…] [--kid KID] [--expires-in-s N]`

use fairgate_e2e::tokens::{mint, TokenSpec};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut tenant = None;
    let mut alg = "HS256".to_string();
    let mut kid: Option<String> = None;
    let mut expires_in_s = 3600i64;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--alg" => alg = args.next().unwrap_or_default(),
            "--kid" => kid = args.next(),
            "--expires-in-s" => {
                expires_in_s = args.next().and_then(|s| s.parse().ok()).unwrap_or(3600)
            }
            t if !t.starts_with("--") => tenant = Some(t.to_string()),
            other => {
                eprintln!("fairgate-token: unknown option {other}");
                std::process::exit(2);
            }
        }
    }
    let Some(tenant) = tenant else {
        eprintln!("usage: fairgate-token <tenant> [--alg ALG] [--kid KID] [--expires-in-s N]");
        std::process::exit(2);
    };
    // The shipped configs name keys after their algorithm family.
    let kid = kid.or_else(|| {
        Some(
            match alg.as_str() {
                a if a.starts_with("HS") => "hs-1",
                a if a.starts_with("RS") || a.starts_with("PS") => "rs-1",
                "ES256" => "es-1",
                "ES384" => "es384-1",
                _ => "ed-1",
            }
            .to_string(),
        )
    });
    let mut spec = TokenSpec::new(&alg, kid.as_deref(), &tenant);
    spec.expires_in_s = Some(expires_in_s);
    match mint(&spec) {
        Ok(token) => println!("{token}"),
        Err(e) => {
            eprintln!("fairgate-token: {e}");
            std::process::exit(1);
        }
    }
}
