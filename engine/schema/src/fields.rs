//! The one definition of Canh's tables.
//!
//! Each table is a list of [`FieldDef`]s declared with the `table!` macro, which also generates a
//! `Col` enum so that parsers address columns by a checked constant (`events::Col::SourceIp`)
//! rather than by name or magic index.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The type of a column, independent of any storage engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// UTC time in nanoseconds since the Unix epoch.
    Timestamp,
    /// UTF-8 text.
    Str,
    /// Arbitrary bytes (used only where text could lose information).
    Bytes,
    /// Unsigned integers of the given width.
    U8,
    U16,
    U32,
    U64,
    /// A list of text values (ECS fields that are arrays, such as `event.category`).
    StrList,
    /// A map from text keys to text values.
    StrMap,
}

impl FieldType {
    /// Times and numbers: the types whose min/max over a page says something a query can
    /// prune on.
    pub fn is_ordered(self) -> bool {
        matches!(
            self,
            FieldType::Timestamp | FieldType::U8 | FieldType::U16 | FieldType::U32 | FieldType::U64
        )
    }

    /// The Arrow type that stores this field.
    pub fn arrow_type(self) -> DataType {
        match self {
            FieldType::Timestamp => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            FieldType::Str => DataType::Utf8,
            FieldType::Bytes => DataType::Binary,
            FieldType::U8 => DataType::UInt8,
            FieldType::U16 => DataType::UInt16,
            FieldType::U32 => DataType::UInt32,
            FieldType::U64 => DataType::UInt64,
            FieldType::StrList => {
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
            }
            FieldType::StrMap => DataType::Map(Arc::new(map_entries_field()), false),
        }
    }
}

/// The names of a `StrMap` column's entries, keys and values, as the Arrow `MapBuilder` names
/// them (and Parquet paths repeat them: `vendor_fields.entries.values`).
pub const MAP_ENTRY_NAMES: (&str, &str, &str) = ("entries", "keys", "values");

/// The entries field of a `StrMap` column.
pub(crate) fn map_entries_field() -> Field {
    let (entries, keys, values) = MAP_ENTRY_NAMES;
    Field::new(
        entries,
        DataType::Struct(
            vec![
                Field::new(keys, DataType::Utf8, false),
                Field::new(values, DataType::Utf8, true),
            ]
            .into(),
        ),
        false,
    )
}

/// One column of a table.
#[derive(Debug, Clone, Copy)]
pub struct FieldDef {
    /// The ECS name with dots, as analysts and rules write it (`source.ip`).
    pub ecs: &'static str,
    /// The storage type.
    pub ty: FieldType,
    /// False only for columns every row has (times, status, the raw line).
    pub nullable: bool,
    /// Nearly every value differs (raw lines, nanosecond times, counters, ephemeral ports):
    /// storage skips dictionary encoding, which would only hash every value and then be
    /// dropped when the dictionary overflows.
    pub distinct: bool,
    /// The same on every row from one sender (device or exporter: its address, agency,
    /// listener, NetFlow version and engine): storage skips dictionary encoding, which would
    /// hash every value of a column that zstd folds to almost nothing without it.
    pub per_sender: bool,
    /// What the field means; becomes the column comment in generated DDL.
    pub doc: &'static str,
}

impl FieldDef {
    /// The stored column name: the ECS name with `_` for `.`, and `@timestamp` as `timestamp`.
    pub fn column(&self) -> String {
        column_name(self.ecs)
    }
}

/// The stored column name for an ECS name.
pub fn column_name(ecs: &str) -> String {
    ecs.trim_start_matches('@').replace('.', "_")
}

/// The tables of the normalised model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Events,
    Flows,
    Alerts,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 3] = [Table::Events, Table::Flows, Table::Alerts];

    /// The table's name in the archive and in databases.
    pub fn name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::Flows => "flows",
            Table::Alerts => "alerts",
        }
    }

    /// The table's column definitions, in storage order.
    pub fn fields(self) -> &'static [FieldDef] {
        match self {
            Table::Events => events::FIELDS,
            Table::Flows => flows::FIELDS,
            Table::Alerts => alerts::FIELDS,
        }
    }

    /// The Arrow schema of the table, built once.
    pub fn schema(self) -> SchemaRef {
        static SCHEMAS: [OnceLock<SchemaRef>; 3] =
            [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        let slot = &SCHEMAS[self as usize];
        slot.get_or_init(|| {
            let fields: Vec<Field> = self
                .fields()
                .iter()
                .map(|f| Field::new(f.column(), f.ty.arrow_type(), f.nullable))
                .collect();
            Arc::new(Schema::new(fields))
        })
        .clone()
    }

    /// The index of the column with this ECS name (`source.ip`) or stored name (`source_ip`).
    pub fn index_of(self, name: &str) -> Option<usize> {
        let column = column_name(name);
        self.fields().iter().position(|f| f.column() == column)
    }
}

/// Declares a table: a `Col` enum (one variant per column, in order) and `FIELDS`.
macro_rules! table {
    ($( $(#[doc = $doc:literal])* $variant:ident = $ecs:literal : $ty:ident $(, $flag:ident)* ; )*) => {
        /// Columns of this table, in storage order; `Col::X as usize` is the column index.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Col {
            $( $(#[doc = $doc])* $variant, )*
        }

        /// The definitions of this table's columns, indexed by `Col`.
        pub static FIELDS: &[FieldDef] = &[
            $( FieldDef {
                ecs: $ecs,
                ty: FieldType::$ty,
                nullable: !has_flag(&[$(stringify!($flag)),*], "required"),
                distinct: has_flag(&[$(stringify!($flag)),*], "distinct"),
                per_sender: has_flag(&[$(stringify!($flag)),*], "per_sender"),
                doc: concat!("" $(, $doc)*),
            }, )*
        ];
    };
}

/// Whether a column declaration carries a flag (`required`, `distinct`, `per_sender`).
const fn has_flag(flags: &[&str], want: &str) -> bool {
    let mut i = 0;
    while i < flags.len() {
        let (a, b) = (flags[i].as_bytes(), want.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// Log events: one row per syslog message (or line from a file), parsed or not.
pub mod events {
    use super::{has_flag, FieldDef, FieldType};

    table! {
        /// Event time (from the message, else the receive time), UTC.
        Timestamp = "@timestamp": Timestamp, required;
        /// When Canh received the message, UTC.
        EventCreated = "event.created": Timestamp, required, distinct;
        /// ECS event kind (`event`, `alert`, `metric`, …).
        EventKind = "event.kind": Str;
        /// ECS event categories (`network`, `authentication`, …).
        EventCategory = "event.category": StrList;
        /// ECS event types (`connection`, `start`, `denied`, …).
        EventType = "event.type": StrList;
        /// What happened, in the device's words normalised to lower case (`deny`, `login`).
        EventAction = "event.action": Str;
        /// `success`, `failure` or `unknown`.
        EventOutcome = "event.outcome": Str;
        /// The device's own code for the message (FortiGate logid, ASA message id, …).
        EventCode = "event.code": Str;
        /// The device or IP address the message came from (the sender's address).
        ObserverIp = "observer.ip": Str, per_sender;
        /// The device name, when the message or inventory names it.
        ObserverHostname = "observer.hostname": Str;
        /// The device vendor (`Fortinet`, `Cisco`).
        ObserverVendor = "observer.vendor": Str;
        /// The device product (`FortiGate`, `ASA`).
        ObserverProduct = "observer.product": Str;
        /// The device type (`firewall`, `switch`, `server`).
        ObserverType = "observer.type": Str;
        /// The agency that owns the sender, from the inventory.
        OrganizationName = "organization.name": Str, per_sender;
        /// The HOSTNAME field of the syslog header.
        HostHostname = "host.hostname": Str;
        /// Syslog PRI value (facility × 8 + severity).
        LogSyslogPriority = "log.syslog.priority": U16;
        /// Syslog facility code (0–23).
        LogSyslogFacilityCode = "log.syslog.facility.code": U8;
        /// Syslog severity code (0–7).
        LogSyslogSeverityCode = "log.syslog.severity.code": U8;
        /// Syslog protocol version (1 for RFC 5424; absent for RFC 3164).
        LogSyslogVersion = "log.syslog.version": U8;
        /// APP-NAME (RFC 5424) or TAG (RFC 3164).
        LogSyslogAppname = "log.syslog.appname": Str;
        /// PROCID (RFC 5424) or the `[pid]` after the TAG (RFC 3164).
        LogSyslogProcid = "log.syslog.procid": Str;
        /// MSGID (RFC 5424).
        LogSyslogMsgid = "log.syslog.msgid": Str;
        /// RFC 5424 structured data, one entry per parameter keyed `SD-ID.PARAM-NAME`; an element
        /// without parameters is one entry keyed by its SD-ID with a null value.
        LogSyslogStructuredData = "log.syslog.structured_data": StrMap;
        /// The listener that received the message (its configured name).
        CanhListener = "canh.listener": Str, per_sender;
        /// `udp`, `tcp` or `file` (`tls` with the TLS listener).
        InputType = "input.type": Str, per_sender;
        /// The sender's address and port as seen by the listener.
        LogSourceAddress = "log.source.address": Str, per_sender;
        /// Source IP address.
        SourceIp = "source.ip": Str;
        SourcePort = "source.port": U16;
        SourceBytes = "source.bytes": U64;
        SourcePackets = "source.packets": U64;
        /// Source address after NAT.
        SourceNatIp = "source.nat.ip": Str;
        SourceNatPort = "source.nat.port": U16;
        DestinationIp = "destination.ip": Str;
        DestinationPort = "destination.port": U16;
        DestinationBytes = "destination.bytes": U64;
        DestinationPackets = "destination.packets": U64;
        DestinationNatIp = "destination.nat.ip": Str;
        DestinationNatPort = "destination.nat.port": U16;
        /// `tcp`, `udp`, `icmp`, …
        NetworkTransport = "network.transport": Str;
        /// Application protocol (`http`, `dns`, `ssh`).
        NetworkProtocol = "network.protocol": Str;
        /// `inbound`, `outbound`, `internal`, `external`.
        NetworkDirection = "network.direction": Str;
        NetworkBytes = "network.bytes": U64;
        NetworkPackets = "network.packets": U64;
        UserName = "user.name": Str;
        UrlOriginal = "url.original": Str;
        UrlDomain = "url.domain": Str;
        DnsQuestionName = "dns.question.name": Str;
        /// The device's policy or rule that handled the traffic.
        RuleName = "rule.name": Str;
        /// The human-readable message: the MSG part of a text log; for a body that is a list of
        /// fields (key=value, CEF, LEEF, CSV), the device's own message field, if any.
        Message = "message": Str, distinct;
        /// The whole raw line as text; invalid UTF-8 is replaced (see `event_original_bytes`).
        EventOriginal = "event.original": Str, required, distinct;
        /// The exact raw bytes, set only when the line is not valid UTF-8, so nothing is lost.
        EventOriginalBytes = "event.original_bytes": Bytes, distinct;
        /// `ok`, `partial` (header or fields missing; what was found is filled) or `failed`.
        ParseStatus = "parse.status": Str, required;
        /// Why parsing failed or was partial.
        ParseError = "parse.error": Str;
        /// The parser that produced the row (`rfc5424`, `rfc3164`, …).
        ParseFormat = "parse.format": Str;
        /// Vendor fields that have no ECS home, under the vendor's own names.
        VendorFields = "vendor_fields": StrMap;
    }
}

/// Network flows from NetFlow v5/v9 and IPFIX exporters.
pub mod flows {
    use super::{has_flag, FieldDef, FieldType};

    table! {
        /// Flow end time, UTC.
        Timestamp = "@timestamp": Timestamp, required, distinct;
        EventStart = "event.start": Timestamp, distinct;
        EventEnd = "event.end": Timestamp, distinct;
        /// When Canh received the export packet.
        EventCreated = "event.created": Timestamp, required, distinct;
        /// The exporter's address.
        ObserverIp = "observer.ip": Str, required, per_sender;
        /// NetFlow version (5, 9, 10 for IPFIX).
        NetflowVersion = "netflow.version": U16, required, per_sender;
        /// v9 source id or IPFIX observation domain id.
        NetflowObservationDomainId = "netflow.observation_domain_id": U32, per_sender;
        OrganizationName = "organization.name": Str, per_sender;
        SourceIp = "source.ip": Str;
        SourcePort = "source.port": U16, distinct;
        DestinationIp = "destination.ip": Str;
        DestinationPort = "destination.port": U16;
        SourceNatIp = "source.nat.ip": Str;
        SourceNatPort = "source.nat.port": U16;
        DestinationNatIp = "destination.nat.ip": Str;
        DestinationNatPort = "destination.nat.port": U16;
        NetworkIanaNumber = "network.iana_number": U8;
        NetworkTransport = "network.transport": Str;
        NetflowTcpFlags = "netflow.tcp_control_bits": U16;
        /// Octets as received (never scaled by the sampling rate).
        NetworkBytes = "network.bytes": U64, distinct;
        /// Packets as received (never scaled by the sampling rate).
        NetworkPackets = "network.packets": U64, distinct;
        NetflowIngressInterface = "netflow.ingress_interface": U32;
        NetflowEgressInterface = "netflow.egress_interface": U32;
        SourceAsNumber = "source.as.number": U32;
        DestinationAsNumber = "destination.as.number": U32;
        NetflowNextHop = "netflow.ip_next_hop_address": Str;
        /// 1 in N packets sampled; absent when unsampled or unknown.
        NetflowSamplingInterval = "netflow.sampling_interval": U32, per_sender;
        /// 1 deterministic, 2 random (v5 header, samplingAlgorithm, samplerMode).
        NetflowSamplingAlgorithm = "netflow.sampling_algorithm": U8, per_sender;
        /// Type of service / traffic class byte (ipClassOfService).
        NetflowIpClassOfService = "netflow.ip_class_of_service": U8;
        /// Prefix lengths of the routes to source and destination (v4 or v6).
        NetflowSourcePrefixLength = "netflow.source_prefix_length": U8;
        NetflowDestinationPrefixLength = "netflow.destination_prefix_length": U8;
        NetflowEngineType = "netflow.engine_type": U8, per_sender;
        NetflowEngineId = "netflow.engine_id": U8, per_sender;
        /// 1 idle timeout, 2 active timeout, 3 end of flow, 4 forced, 5 lack of resources.
        NetflowFlowEndReason = "netflow.flow_end_reason": U8;
        NetworkDirection = "network.direction": Str;
        NetflowVlanId = "netflow.vlan_id": U16;
        NetflowIcmpType = "netflow.icmp_type": U8;
        NetflowIcmpCode = "netflow.icmp_code": U8;
        NetflowApplicationId = "netflow.application_id": Str;
        /// Other information elements, keyed by IANA name or `ENTERPRISE.ID`.
        VendorFields = "vendor_fields": StrMap;
    }
}

/// Alerts raised by detection rules.
pub mod alerts {
    use super::{has_flag, FieldDef, FieldType};

    table! {
        /// When the alert was raised, UTC.
        Timestamp = "@timestamp": Timestamp, required;
        /// Stable id, the same on every redelivery.
        AlertId = "alert.id": Str, required;
        RuleId = "rule.id": Str, required;
        RuleTitle = "rule.title": Str, required;
        /// Sigma level: informational, low, medium, high, critical.
        RuleLevel = "rule.level": Str, required;
        RuleTags = "rule.tags": StrList;
        /// Time of the first and last matching event.
        EventStart = "event.start": Timestamp, required;
        EventEnd = "event.end": Timestamp, required;
        /// Number of matching events folded into the alert.
        EventCount = "event.count": U64, required;
        /// The correlation group key (`source.ip=10.1.2.3`).
        GroupKey = "alert.group_key": Str;
        OrganizationName = "organization.name": Str;
        SourceIp = "source.ip": Str;
        DestinationIp = "destination.ip": Str;
        DestinationPort = "destination.port": U16;
        UserName = "user.name": Str;
        /// A bounded sample of the matching events, each as a JSON object.
        AlertSample = "alert.sample": StrList;
        /// `new`, `acknowledged` or `closed`.
        AlertStatus = "alert.status": Str, required;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_follow_ecs_with_underscores() {
        let schema = Table::Events.schema();
        for name in [
            "timestamp",
            "source_ip",
            "log_syslog_appname",
            "event_original",
        ] {
            assert!(schema.field_with_name(name).is_ok(), "missing {name}");
        }
        assert_eq!(column_name("@timestamp"), "timestamp");
    }

    #[test]
    fn col_enum_matches_field_table() {
        assert_eq!(
            events::FIELDS[events::Col::SourceIp as usize].ecs,
            "source.ip"
        );
        assert_eq!(
            events::FIELDS[events::Col::VendorFields as usize].ecs,
            "vendor_fields"
        );
        assert_eq!(
            flows::FIELDS[flows::Col::VendorFields as usize].ecs,
            "vendor_fields"
        );
        assert_eq!(
            alerts::FIELDS[alerts::Col::AlertStatus as usize].ecs,
            "alert.status"
        );
    }

    #[test]
    fn column_names_are_unique_per_table() {
        for table in Table::ALL {
            let mut names: Vec<String> = table.fields().iter().map(FieldDef::column).collect();
            let n = names.len();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), n, "duplicate column in {}", table.name());
        }
    }

    #[test]
    fn index_of_accepts_both_spellings() {
        assert_eq!(
            Table::Events.index_of("source.ip"),
            Some(events::Col::SourceIp as usize)
        );
        assert_eq!(
            Table::Events.index_of("source_ip"),
            Some(events::Col::SourceIp as usize)
        );
        assert_eq!(Table::Events.index_of("nope"), None);
    }
}
