//! `ledgerctl token`: bearer tokens in a data dir (specs/tokens.md); a
//! running ledgerd reads a change at its next request.

use anyhow::{Context, Result};
use clap::Subcommand;

/// What to do with the tokens.
#[derive(Subcommand)]
pub enum TokenAction {
    /// Issue a token; prints it as the last line (only its hash is stored).
    Add {
        /// The enforcer (or reader, or eraser: the person who asks for
        /// erasures) the token authenticates.
        #[arg(long)]
        enforcer: String,
        /// writer (append records whose enforcer.id is --enforcer), relay
        /// (append records of any enforcer: collectors, log shippers),
        /// reader (read records and proofs) or eraser (erase decisions,
        /// specs/erasure.md).
        #[arg(long)]
        role: String,
        /// When the token stops working: an RFC 3339 time, or a duration
        /// from now (`90d`, `12h`, `30m`). Default: never.
        #[arg(long)]
        expires: Option<String>,
        /// Bind the token to a client certificate: it is accepted only
        /// over a mutual-TLS connection (ledgerd --tls-client-ca) whose
        /// certificate carries this name as a URI or DNS subjectAltName,
        /// such as a SPIFFE ID (spiffe://example.org/ns/prod/sa/gw). A
        /// token copied off its machine is then of no use elsewhere.
        #[arg(long, value_name = "NAME")]
        cert: Option<String>,
        /// Records a second the token may send on average (writer and
        /// relay tokens): past it, its requests are answered 429 with
        /// Retry-After until it is back under, and other tokens are not
        /// held up by it. Default: no limit.
        #[arg(long, value_name = "RECORDS", value_parser = parse_rate)]
        rate: Option<u32>,
    },
    /// List tokens: id, role, enforcer, expiry, bound certificate name.
    List,
    /// Revoke a token by its id (from `token list`).
    Revoke {
        /// The token id.
        id: String,
    },
}

/// `--rate`: records a second, 1 to [`api::tokens::MAX_RATE`].
fn parse_rate(s: &str) -> Result<u32, String> {
    api::tokens::parse_rate(s).ok_or_else(|| {
        format!(
            "{s:?}: a rate is records a second, from 1 to {}",
            api::tokens::MAX_RATE
        )
    })
}

/// Runs `action` on the token file of the data dir `data`.
pub fn run(data: &std::path::Path, action: TokenAction) -> Result<()> {
    use api::tokens::{self, Role};
    match action {
        TokenAction::Add {
            enforcer,
            role,
            expires,
            cert,
            rate,
        } => {
            let role = Role::parse(&role).with_context(|| {
                format!("--role must be writer, relay, reader or eraser, not {role:?}")
            })?;
            let expires = expires.as_deref().map(expiry).transpose()?;
            let (entry, secret) = tokens::add(
                data,
                &enforcer,
                role,
                tokens::Terms {
                    expires,
                    cert: cert.as_deref(),
                    rate,
                },
            )?;
            let bound = entry.cert.as_ref().map_or(String::new(), |c| {
                format!(", accepted only from a client certificate naming {c}")
            });
            eprintln!(
                "token {} ({}) for {}{bound}; store it now, it is not shown again:",
                entry.id,
                role.as_str(),
                entry.enforcer
            );
            println!("{secret}");
        }
        TokenAction::List => {
            for e in tokens::load(data)? {
                let expires = e.expires.map_or(String::new(), |t| format!(" expires {t}"));
                let cert = e.cert.map_or(String::new(), |c| format!(" cert {c}"));
                let rate = e.rate.map_or(String::new(), |r| format!(" rate {r}/s"));
                println!(
                    "{} {} {}{expires}{cert}{rate}",
                    e.id,
                    e.role.as_str(),
                    e.enforcer
                );
            }
        }
        TokenAction::Revoke { id } => {
            let gone = tokens::revoke(data, &id)?;
            println!(
                "revoked {} ({} {})",
                gone.id,
                gone.role.as_str(),
                gone.enforcer
            );
        }
    }
    Ok(())
}

/// `--expires`: an RFC 3339 time, or a duration from now (`90d`, `12h`,
/// `30m`, `45s`).
fn expiry(v: &str) -> Result<verifier::timestamp::Timestamp> {
    crate::when::ahead(v).with_context(|| {
        format!("--expires {v:?} is neither an RFC 3339 time nor a duration such as 90d, 12h, 30m")
    })
}
