//! NetFlow v9 and IPFIX: template sets, options template sets, and the data sets they describe.
//!
//! ```text
//! v9 header   version=9 count sysUpTime unixSecs sequence sourceId            (20 bytes)
//! IPFIX header version=10 length exportTime sequence observationDomainId      (16 bytes)
//! set         setId length body…     v9: 0 template, 1 options; IPFIX: 2, 3; ≥256 data
//! ```

use std::sync::Arc;

use canh_schema::TableBuilder;

use super::ie::{self, Times};
use super::plan::Plan;
use super::{err, gap, DecodeError, FlowDecoder, Packet, Reader, Summary};

/// One field of a template: information element id, enterprise number (0 for IANA), and
/// length in bytes (`VARIABLE` for IPFIX variable-length fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub id: u16,
    pub enterprise: u32,
    pub len: u16,
}

/// IPFIX's marker for a variable-length field.
pub const VARIABLE: u16 = 0xFFFF;

/// A data or options template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub id: u16,
    /// Scope fields first (options templates only), then the rest.
    pub fields: Vec<Field>,
    pub scope_fields: usize,
    pub options: bool,
    /// The smallest record this template can describe (variable fields count one byte).
    pub min_len: usize,
    pub learned_ns: i64,
    /// How to decode its data sets column by column, when its layout allows.
    pub plan: Option<Plan>,
}

impl Template {
    fn new(
        id: u16,
        fields: Vec<Field>,
        scope_fields: usize,
        options: bool,
        version: u16,
        now: i64,
    ) -> Self {
        let min_len = fields
            .iter()
            .map(|f| {
                if f.len == VARIABLE {
                    1
                } else {
                    usize::from(f.len)
                }
            })
            .sum();
        let plan = if options {
            None
        } else {
            Plan::new(&fields, version)
        };
        Template {
            id,
            fields,
            scope_fields,
            options,
            min_len,
            learned_ns: now,
            plan,
        }
    }
}

/// A data set that came before its template, with what its packet said about time.
#[derive(Debug)]
pub(super) struct Pending {
    set_id: u16,
    body: Vec<u8>,
    export_secs: u32,
    uptime_ms: Option<u32>,
    received_ns: i64,
}

struct Header {
    version: u16,
    /// Export time, Unix seconds.
    secs: u32,
    /// v9: router uptime (ms) at export.
    uptime_ms: Option<u32>,
    sequence: u32,
    domain: u32,
    /// Where the sets end (IPFIX gives the message length).
    end: usize,
}

fn header(r: &mut Reader<'_>) -> Result<Header, DecodeError> {
    let version = r.u16("version")?;
    if version == 9 {
        let _count = r.u16("count")?;
        let uptime = r.u32("sysUpTime")?;
        let secs = r.u32("unixSecs")?;
        let sequence = r.u32("sequence")?;
        let domain = r.u32("sourceId")?;
        Ok(Header {
            version,
            secs,
            uptime_ms: Some(uptime),
            sequence,
            domain,
            end: r.b.len(),
        })
    } else {
        let length = usize::from(r.u16("length")?);
        let secs = r.u32("exportTime")?;
        let sequence = r.u32("sequence")?;
        let domain = r.u32("observationDomainId")?;
        if length < 16 || length > r.b.len() {
            return Err(err(
                "length",
                format!("message length {length}, packet {} bytes", r.b.len()),
            ));
        }
        Ok(Header {
            version,
            secs,
            uptime_ms: None,
            sequence,
            domain,
            end: length,
        })
    }
}

pub(super) fn decode(
    d: &mut FlowDecoder,
    p: &Packet<'_>,
    b: &mut TableBuilder,
    s: &mut Summary,
) -> Result<(), DecodeError> {
    let mut r = Reader::new(p.payload);
    let h = header(&mut r)?;
    let limits = d.limits;
    let dom = d.domain(p.exporter, h.version, h.domain, p.received_ns);
    // v9 counts export packets; IPFIX counts data records (known after the data sets).
    let mut records: u32 = 0;
    let mut result = Ok(());
    let mut learned: Vec<u16> = Vec::new();
    expire_pending(dom, &limits, p.received_ns, s);
    while r.pos + 4 <= h.end {
        let set_start = r.pos;
        let set_id = r.u16("set id")?;
        let len = usize::from(r.u16("set length")?);
        if len < 4 || set_start + len > h.end {
            // v9 packets padded with zeros end in a "set" of length 0.
            if len == 0 && p.payload[set_start..h.end].iter().all(|&x| x == 0) {
                break;
            }
            result = Err(err(
                "set_length",
                format!(
                    "set {set_id} at offset {set_start} claims {len} bytes, {} left",
                    h.end - set_start
                ),
            ));
            break;
        }
        let body = &p.payload[set_start + 4..set_start + len];
        r.pos = set_start + len;
        let step = match (h.version, set_id) {
            (9, 0) | (10, 2) | (9, 1) | (10, 3) => {
                let options = matches!(set_id, 1 | 3);
                templates(
                    dom,
                    &limits,
                    body,
                    h.version,
                    options,
                    p.received_ns,
                    s,
                    &mut learned,
                )
            }
            (_, id) if id >= 256 && !dom.templates.contains_key(&id) => {
                hold(dom, &limits, id, body, &h, p.received_ns, s);
                Ok(())
            }
            (_, id) if id >= 256 => {
                let times = Times {
                    export_secs: h.secs,
                    uptime_ms: h.uptime_ms,
                    observer: super::exporter_text(p),
                };
                data(
                    dom,
                    &limits,
                    body,
                    id,
                    &times,
                    p,
                    h.version,
                    h.domain,
                    b,
                    s,
                    &mut records,
                )
            }
            // Reserved set ids: skipped, as RFC 7011 says.
            _ => Ok(()),
        };
        if let Err(e) = step {
            result = Err(e);
            break;
        }
    }
    // Data that waited for a template learned in this packet.
    if !learned.is_empty() && !dom.pending.is_empty() {
        let (ready, waiting): (Vec<Pending>, Vec<Pending>) = dom
            .pending
            .drain(..)
            .partition(|q| learned.contains(&q.set_id));
        dom.pending.extend(waiting);
        dom.pending_bytes = dom.pending.iter().map(|q| q.body.len()).sum();
        for q in ready {
            let times = Times {
                export_secs: q.export_secs,
                uptime_ms: q.uptime_ms,
                observer: super::exporter_text(p),
            };
            let held = Packet {
                received_ns: q.received_ns,
                ..*p
            };
            let mut uncounted = 0;
            let step = data(
                dom,
                &limits,
                &q.body,
                q.set_id,
                &times,
                &held,
                h.version,
                h.domain,
                b,
                s,
                &mut uncounted,
            );
            if let Err(e) = step {
                result = result.and(Err(e));
            }
        }
    }
    // IPFIX numbers a message by the data records sent before it (RFC 7011 §3.1); some
    // exporters (softflowd) count its own records too. Either way of counting is no loss.
    let counts_own = h.version == 10
        && dom
            .last_sequence
            .is_some_and(|last| h.sequence == last.wrapping_add(records));
    s.sequence_gap = if counts_own {
        0
    } else {
        gap(dom.next_sequence, h.sequence)
    };
    dom.last_sequence = Some(h.sequence);
    dom.next_sequence = match h.version {
        9 => Some(h.sequence.wrapping_add(1)),
        // Held data sets have records not counted yet: the next number cannot be known.
        _ if s.held > 0 => None,
        _ => Some(h.sequence.wrapping_add(records)),
    };
    result
}

/// Holds a data set whose template is unknown, dropping the oldest held sets past the limits.
fn hold(
    dom: &mut super::Domain,
    limits: &super::Limits,
    set_id: u16,
    body: &[u8],
    h: &Header,
    now: i64,
    s: &mut Summary,
) {
    if body.len() > limits.pending_bytes || limits.pending_sets == 0 {
        s.no_template += 1;
        return;
    }
    while dom.pending.len() >= limits.pending_sets
        || dom.pending_bytes + body.len() > limits.pending_bytes
    {
        match dom.pending.pop_front() {
            Some(q) => {
                dom.pending_bytes -= q.body.len();
                s.no_template += 1;
            }
            None => break,
        }
    }
    dom.pending_bytes += body.len();
    dom.pending.push_back(Pending {
        set_id,
        body: body.to_vec(),
        export_secs: h.secs,
        uptime_ms: h.uptime_ms,
        received_ns: now,
    });
    s.held += 1;
}

/// Drops held data sets older than the hold time.
fn expire_pending(dom: &mut super::Domain, limits: &super::Limits, now: i64, s: &mut Summary) {
    while let Some(q) = dom.pending.front() {
        if now.saturating_sub(q.received_ns) <= limits.pending_ttl_ns {
            break;
        }
        dom.pending_bytes -= q.body.len();
        dom.pending.pop_front();
        s.no_template += 1;
    }
}

/// A template or options template set: learns each template (or withdraws it).
#[allow(clippy::too_many_arguments)]
fn templates(
    dom: &mut super::Domain,
    limits: &super::Limits,
    body: &[u8],
    version: u16,
    options: bool,
    now: i64,
    s: &mut Summary,
    learned: &mut Vec<u16>,
) -> Result<(), DecodeError> {
    let mut r = Reader::new(body);
    // Padding at the end of a set is shorter than a template header.
    while r.remaining() >= 4 {
        let id = r.u16("template id")?;
        let (scope, total) = if version == 9 && options {
            let scope_len = usize::from(r.u16("option scope length")?);
            let opt_len = usize::from(r.u16("option length")?);
            if scope_len % 4 != 0 || opt_len % 4 != 0 {
                return Err(err(
                    "template",
                    format!("options template {id}: scope/option lengths {scope_len}/{opt_len} are not multiples of 4"),
                ));
            }
            (scope_len / 4, scope_len / 4 + opt_len / 4)
        } else if options {
            let count = usize::from(r.u16("field count")?);
            let scope = usize::from(r.u16("scope field count")?);
            (scope, count)
        } else {
            (0, usize::from(r.u16("field count")?))
        };
        if version == 10 && total == 0 {
            // Withdrawal (RFC 7011 §8.1): template id 2 or 3 withdraws every template.
            if id == 2 || id == 3 {
                dom.templates.retain(|_, t| t.options != (id == 3));
            } else {
                dom.templates.remove(&id);
            }
            s.withdrawn += 1;
            continue;
        }
        if id < 256 {
            return Err(err("template", format!("template id {id} is below 256")));
        }
        if total > limits.fields_per_template || scope > total {
            return Err(err(
                "template",
                format!(
                    "template {id}: {total} fields ({scope} scope), at most {} allowed",
                    limits.fields_per_template
                ),
            ));
        }
        let mut fields = Vec::with_capacity(total);
        for _ in 0..total {
            let raw = r.u16("field id")?;
            let len = r.u16("field length")?;
            let (id, enterprise) = if version == 10 && raw & 0x8000 != 0 {
                (raw & 0x7fff, r.u32("enterprise number")?)
            } else {
                (raw, 0)
            };
            // v9 has no variable-length fields in its RFC, but exporters (H3C) send them in
            // the IPFIX encoding, which is what `VARIABLE` means here too.
            fields.push(Field {
                id,
                enterprise,
                len,
            });
        }
        let t = Template::new(id, fields, scope, options, version, now);
        if t.min_len == 0 {
            return Err(err(
                "template",
                format!("template {id}: every field has length 0"),
            ));
        }
        if !dom.templates.contains_key(&id) && dom.templates.len() >= limits.templates_per_domain {
            return Err(err(
                "template_limit",
                format!(
                    "more than {} templates from one exporter and domain",
                    limits.templates_per_domain
                ),
            ));
        }
        dom.templates.insert(id, Arc::new(t));
        learned.push(id);
        s.templates += 1;
    }
    Ok(())
}

/// A data set: one row per flow record, or the options it announces.
#[allow(clippy::too_many_arguments)]
fn data(
    dom: &mut super::Domain,
    limits: &super::Limits,
    body: &[u8],
    set_id: u16,
    times: &Times,
    p: &Packet<'_>,
    version: u16,
    domain: u32,
    b: &mut TableBuilder,
    s: &mut Summary,
    records: &mut u32,
) -> Result<(), DecodeError> {
    let template = match dom.templates.get(&set_id) {
        Some(t) if p.received_ns.saturating_sub(t.learned_ns) <= limits.template_ttl_ns => {
            t.clone()
        }
        // Expired: forgotten, and the data waits for the template to be sent again.
        Some(_) => {
            dom.templates.remove(&set_id);
            let h = Header {
                version,
                secs: times.export_secs,
                uptime_ms: times.uptime_ms,
                sequence: 0,
                domain,
                end: 0,
            };
            hold(dom, limits, set_id, body, &h, p.received_ns, s);
            return Ok(());
        }
        None => {
            s.no_template += 1;
            return Ok(());
        }
    };
    if let Some(plan) = template.plan.as_ref().filter(|_| limits.columnar) {
        let n = plan.decode(dom, body, times, p, version, domain, b);
        *records = records.wrapping_add(n as u32);
        s.flows += n;
        return Ok(());
    }
    let mut r = Reader::new(body);
    let mut values: Vec<(Field, &[u8])> = Vec::with_capacity(template.fields.len());
    while r.remaining() >= template.min_len {
        values.clear();
        for f in &template.fields {
            let len = if f.len == VARIABLE {
                match r.u8("variable length")? {
                    255 => usize::from(r.u16("variable length")?),
                    n => usize::from(n),
                }
            } else {
                usize::from(f.len)
            };
            values.push((*f, r.bytes(len, "field value")?));
        }
        *records = records.wrapping_add(1);
        if template.options {
            ie::options(dom, &template, &values);
            s.options += 1;
        } else {
            ie::flow(dom, &values, times, p, version, domain, b);
            s.flows += 1;
        }
    }
    Ok(())
}
