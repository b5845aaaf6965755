//! `mailroom dns DOMAIN`: the DNS records a domain needs for its mail to be delivered and
//! trusted (MX, SPF, one DKIM record per key, DMARC; MTA-STS and TLS-RPT optionally), in zone
//! file form with a one-line explanation each; and `--check`, which asks the resolver of
//! `[dns]` what is published and says what is missing or wrong.

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dmarc::Dmarc;
use mail_auth::spf::Spf;

use crate::config::Config;
use crate::dkim::DkimKeys;
use crate::dns::Dns;
use crate::queue::route::MxAnswer;

/// What a record is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Mx,
    Spf,
    Dkim,
    Dmarc,
    MtaSts,
    TlsRpt,
}

/// One record to publish.
#[derive(Debug, Clone)]
pub struct Record {
    pub kind: Kind,
    /// Owner name, without the final dot.
    pub name: String,
    /// `MX` or `TXT`.
    pub rtype: &'static str,
    /// The record data as it is meant (TXT: the text, unsplit; MX: "10 host").
    pub value: String,
    /// One line: what it does.
    pub why: String,
    /// Not needed for delivery (MTA-STS, TLS-RPT).
    pub optional: bool,
}

impl Record {
    /// The zone-file line: TXT text split into strings of at most 255 octets (RFC 1035
    /// §3.3.14; a 2048-bit RSA key needs two).
    pub fn zone_line(&self) -> String {
        let data = if self.rtype == "TXT" {
            self.value
                .as_bytes()
                .chunks(255)
                .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            format!("{}.", self.value)
        };
        format!("{}. 3600 IN {} {}", self.name, self.rtype, data)
    }
}

/// Every record `domain` needs for mail handled by this server (blocking: reads or makes the
/// domain's DKIM keys).
pub fn records(config: &Config, keys: &DkimKeys, domain: &str) -> Result<Vec<Record>, String> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let host = config.hostname.trim_end_matches('.').to_string();
    let mut out = vec![
        Record {
            kind: Kind::Mx,
            name: domain.clone(),
            rtype: "MX",
            value: format!("10 {host}"),
            why: format!(
                "mail for {domain} is delivered to this server, {host} (which needs an A/AAAA record of its own)"
            ),
            optional: false,
        },
        Record {
            kind: Kind::Spf,
            name: domain.clone(),
            rtype: "TXT",
            value: "v=spf1 mx -all".into(),
            why: format!(
                "SPF (RFC 7208): only the hosts of {domain}'s MX send its mail; add ip4:/include: for any other sender"
            ),
            optional: false,
        },
    ];
    if config.dkim.sign {
        let list = keys.keys_for(&domain).map_err(|e| e.to_string())?;
        for k in list.iter() {
            let alg = match k.algorithm {
                crate::config::DkimAlgorithm::Ed25519 => "ed25519-sha256, RFC 8463",
                crate::config::DkimAlgorithm::Rsa => "rsa-sha256, RFC 6376",
            };
            out.push(Record {
                kind: Kind::Dkim,
                name: k.dns_name(),
                rtype: "TXT",
                value: k.dns_record(),
                why: format!(
                    "DKIM ({alg}): the public key receivers check this server's signatures with"
                ),
                optional: false,
            });
        }
    }
    out.push(Record {
        kind: Kind::Dmarc,
        name: format!("_dmarc.{domain}"),
        rtype: "TXT",
        value: "v=DMARC1; p=quarantine; adkim=r; aspf=r".into(),
        why: format!(
            "DMARC (RFC 7489): mail claiming to be from {domain} that passes neither SPF nor DKIM goes to spam"
        ),
        optional: false,
    });
    out.push(Record {
        kind: Kind::MtaSts,
        name: format!("_mta-sts.{domain}"),
        rtype: "TXT",
        value: format!("v=STSv1; id={}", chrono::Utc::now().format("%Y%m%d")),
        why: format!(
            "optional, MTA-STS (RFC 8461): senders must use TLS to reach {domain}; needs the policy file at https://mta-sts.{domain}/.well-known/mta-sts.txt"
        ),
        optional: true,
    });
    out.push(Record {
        kind: Kind::TlsRpt,
        name: format!("_smtp._tls.{domain}"),
        rtype: "TXT",
        value: format!("v=TLSRPTv1; rua=mailto:postmaster@{domain}"),
        why: "optional, TLS-RPT (RFC 8460): senders report TLS failures to postmaster".into(),
        optional: true,
    });
    Ok(out)
}

/// The records as text to paste into the zone: a comment line, then the record.
pub fn render(domain: &str, records: &[Record]) -> String {
    let mut s = format!("; DNS records for {domain}: paste them into its zone\n");
    for r in records {
        s.push_str(&format!("\n; {}\n{}\n", r.why, r.zone_line()));
    }
    s
}

/// What `--check` found for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    Missing,
    Wrong(String),
    /// The lookup itself failed.
    Error(String),
}

/// One line of the check's report.
#[derive(Debug, Clone)]
pub struct Finding {
    pub record: Record,
    pub status: Status,
}

impl Finding {
    /// `ok`, `MISSING`, `WRONG`, `optional, not published`, `ERROR` + what to do.
    pub fn line(&self) -> String {
        let what = format!("{} {}", self.record.rtype, self.record.name);
        match &self.status {
            Status::Ok => format!("ok       {what}"),
            Status::Missing if self.record.optional => {
                format!("absent   {what} (optional)")
            }
            Status::Missing => format!("MISSING  {what}: publish {}", self.record.zone_line()),
            Status::Wrong(why) => format!(
                "WRONG    {what}: {why}; publish {}",
                self.record.zone_line()
            ),
            Status::Error(e) => format!("ERROR    {what}: {e}"),
        }
    }

    /// Does it make the domain's mail fail (a required record missing or wrong)?
    pub fn is_problem(&self) -> bool {
        match self.status {
            Status::Ok => false,
            Status::Missing => !self.record.optional,
            Status::Wrong(_) | Status::Error(_) => true,
        }
    }
}

/// The `p=` of a DKIM record, whitespace removed.
fn dkim_p(record: &str) -> Option<String> {
    record.split(';').find_map(|tag| {
        let (k, v) = tag.split_once('=')?;
        (k.trim() == "p").then(|| v.chars().filter(|c| !c.is_whitespace()).collect())
    })
}

/// Asks the resolver for each record and compares.
pub async fn check(dns: &Dns, records: &[Record]) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in records {
        let status = match r.kind {
            Kind::Mx => match dns.mx(&r.name).await {
                Err(e) => Status::Error(e),
                Ok(MxAnswer::Records(list)) => {
                    let want = r.value.split_whitespace().last().unwrap_or("");
                    if list
                        .iter()
                        .any(|(_, h)| h.trim_end_matches('.').eq_ignore_ascii_case(want))
                    {
                        Status::Ok
                    } else {
                        let hosts: Vec<_> = list
                            .iter()
                            .map(|(p, h)| format!("{p} {}", h.trim_end_matches('.')))
                            .collect();
                        Status::Wrong(format!(
                            "the MX is {}, not this server ({want})",
                            hosts.join(", ")
                        ))
                    }
                }
                Ok(_) => Status::Missing,
            },
            _ => match dns.txt(&r.name).await {
                Err(e) => Status::Error(e),
                Ok(texts) => txt_status(r, &texts),
            },
        };
        out.push(Finding {
            record: r.clone(),
            status,
        });
    }
    out
}

fn txt_status(r: &Record, texts: &[String]) -> Status {
    let prefix = |t: &str, p: &str| t.trim_start().to_ascii_lowercase().starts_with(p);
    match r.kind {
        Kind::Spf => {
            let spf: Vec<_> = texts.iter().filter(|t| prefix(t, "v=spf1")).collect();
            match spf.as_slice() {
                [] => Status::Missing,
                [one] => match Spf::parse(one.as_bytes()) {
                    Ok(_) => Status::Ok,
                    Err(e) => Status::Wrong(format!("the SPF record does not parse ({e})")),
                },
                _ => Status::Wrong(format!(
                    "{} SPF records: RFC 7208 §4.5 makes that a permerror; keep one",
                    spf.len()
                )),
            }
        }
        Kind::Dkim => {
            let dkim: Vec<_> = texts
                .iter()
                .filter(|t| prefix(t, "v=dkim1") || t.contains("p="))
                .collect();
            let want = dkim_p(&r.value);
            match dkim.as_slice() {
                [] => Status::Missing,
                [one] => {
                    if DomainKey::parse(one.as_bytes()).is_err() {
                        Status::Wrong("the DKIM record does not parse".into())
                    } else if dkim_p(one) != want {
                        Status::Wrong("the published key (p=) is not this server's key".into())
                    } else {
                        Status::Ok
                    }
                }
                _ => Status::Wrong("several DKIM records at one selector; keep one".into()),
            }
        }
        Kind::Dmarc => {
            let d: Vec<_> = texts.iter().filter(|t| prefix(t, "v=dmarc1")).collect();
            match d.as_slice() {
                [] => Status::Missing,
                [one] => match Dmarc::parse(one.as_bytes()) {
                    Ok(_) => Status::Ok,
                    Err(e) => Status::Wrong(format!("the DMARC record does not parse ({e})")),
                },
                _ => Status::Wrong(
                    "several DMARC records: receivers then ignore them all (RFC 7489 §6.6.3)"
                        .into(),
                ),
            }
        }
        Kind::MtaSts => {
            if texts.iter().any(|t| prefix(t, "v=stsv1")) {
                Status::Ok
            } else {
                Status::Missing
            }
        }
        Kind::TlsRpt => {
            if texts.iter().any(|t| prefix(t, "v=tlsrptv1")) {
                Status::Ok
            } else {
                Status::Missing
            }
        }
        Kind::Mx => Status::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: Kind, value: &str) -> Record {
        Record {
            kind,
            name: "example.test".into(),
            rtype: "TXT",
            value: value.into(),
            why: String::new(),
            optional: false,
        }
    }

    #[test]
    fn long_txt_is_split_into_strings() {
        let r = rec(Kind::Dkim, &"a".repeat(300));
        let line = r.zone_line();
        assert!(line.starts_with("example.test. 3600 IN TXT \""), "{line}");
        assert!(line.contains(&format!("\"{}\" \"{}\"", "a".repeat(255), "a".repeat(45))));
    }

    #[test]
    fn txt_findings() {
        let spf = rec(Kind::Spf, "v=spf1 mx -all");
        assert_eq!(txt_status(&spf, &[]), Status::Missing);
        assert_eq!(
            txt_status(&spf, &["v=spf1 ip4:192.0.2.1 -all".into()]),
            Status::Ok
        );
        assert!(matches!(
            txt_status(&spf, &["v=spf1 -all".into(), "v=spf1 mx -all".into()]),
            Status::Wrong(_)
        ));
        let dkim = rec(
            Kind::Dkim,
            "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        );
        assert_eq!(
            txt_status(
                &dkim,
                &["v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQ HOg7hcvPapiMlrwIaaPcHURo=".into()]
            ),
            Status::Ok
        );
        assert!(matches!(
            txt_status(
                &dkim,
                &["v=DKIM1; k=ed25519; p=22qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".into()]
            ),
            Status::Wrong(_)
        ));
        let dmarc = rec(Kind::Dmarc, "v=DMARC1; p=quarantine");
        assert_eq!(
            txt_status(&dmarc, &["v=DMARC1; p=reject".into()]),
            Status::Ok
        );
    }
}
