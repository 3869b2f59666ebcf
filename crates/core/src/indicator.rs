//! Indicators of compromise (reference §3): the MDE indicator entity, its enums, and the rules a
//! submitted indicator must pass before anything is stored.
//!
//! A submission arrives as an [`IndicatorRequest`] (the JSON body of `POST /api/indicators`, or
//! one item of an import). [`IndicatorRequest::validate`] checks it and normalises it into an
//! [`IndicatorSubmission`]: required fields present, the action allowed for the type (§3.1), the
//! value well-formed for its type (§3.3) and in canonical form (lower-case hashes and domains,
//! canonical IP addresses and CIDR networks), legacy actions mapped to their current names.
//! [`Indicator::create`] and [`Indicator::update`] turn a submission into the stored entity.
//!
//! Rampart accepts more than MDE in three places: `IpAddress` indicators may be CIDR networks
//! (IPv4 and IPv6), internal addresses are accepted when the submission says `allowInternal`,
//! and there is no cap on the number of indicators.

use crate::alert::Severity;
use crate::error::{ErrorCode, Rejection};
use crate::machine::MachineGroup;
use crate::odata::{CmpOp, EntitySet, Field, FieldType, Filter, Literal};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use time::OffsetDateTime;

macro_rules! indicator_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
        pub enum $name { $($(#[$vdoc])* $variant,)* }

        impl $name {
            pub const VARIANTS: &'static [&'static str] = &[$(stringify!($variant),)*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant),)* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            /// Case-insensitive, as MDE matches enum values.
            fn from_str(s: &str) -> Result<Self, String> {
                $(if s.eq_ignore_ascii_case(stringify!($variant)) { return Ok($name::$variant); })*
                Err(format!("'{}' is not one of {}", shorten(s), Self::VARIANTS.join(", ")))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

indicator_enum!(
    /// What the indicator's value is.
    IndicatorType { FileSha1, FileSha256, FileMd5, CertificateThumbprint, IpAddress, DomainName, Url }
);
indicator_enum!(
    /// What a match does. The legacy `Alert` and `AlertAndBlock` are accepted on submission
    /// ([`RequestedAction`]) and stored as `Audit` and `BlockAndRemediate`.
    IndicatorAction { Allowed, Audit, Warn, Block, BlockAndRemediate }
);
indicator_enum!(
    /// Who submitted the indicator: a portal user or an API application.
    SourceType { User, AadApp }
);

/// The severities an indicator may have (the alert severities without `UnSpecified`).
pub const SEVERITIES: &[&str] = &["Informational", "Low", "Medium", "High"];

impl IndicatorType {
    /// The actions MDE allows for this type (reference §3.1, indicators-overview.md).
    pub fn allowed_actions(self) -> &'static [IndicatorAction] {
        use IndicatorAction::*;
        match self {
            IndicatorType::FileSha1 | IndicatorType::FileSha256 | IndicatorType::FileMd5 => {
                &[Allowed, Audit, Warn, Block, BlockAndRemediate]
            }
            IndicatorType::IpAddress | IndicatorType::DomainName | IndicatorType::Url => {
                &[Allowed, Audit, Warn, Block]
            }
            IndicatorType::CertificateThumbprint => &[Allowed, BlockAndRemediate],
        }
    }
}

/// An action as a submission may name it: a current action or one of the legacy names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestedAction {
    Current(IndicatorAction),
    /// Legacy `Alert`: now `Audit` with `generateAlert` true.
    Alert,
    /// Legacy `AlertAndBlock`: now `BlockAndRemediate`.
    AlertAndBlock,
}

impl std::str::FromStr for RequestedAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("Alert") {
            return Ok(RequestedAction::Alert);
        }
        if s.eq_ignore_ascii_case("AlertAndBlock") {
            return Ok(RequestedAction::AlertAndBlock);
        }
        s.parse().map(RequestedAction::Current).map_err(|_| {
            format!(
                "'{}' is not one of {} (or the legacy Alert, AlertAndBlock)",
                shorten(s),
                IndicatorAction::VARIANTS.join(", ")
            )
        })
    }
}

impl<'de> Deserialize<'de> for RequestedAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The MDE indicator entity (reference §3.1), field for field, plus Rampart's `allowInternal`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Indicator {
    /// A number as a string, e.g. `"995"`; unique within the tenant and never reused for
    /// another indicator.
    pub id: String,
    /// The hash, certificate thumbprint, IP address or CIDR network, domain or URL, in canonical
    /// form (lower-case hashes and domains, canonical addresses, networks at their base address).
    pub indicator_value: String,
    pub indicator_type: IndicatorType,
    pub action: IndicatorAction,
    /// The application the indicator belongs to; set on creation only.
    pub application: Option<String>,
    pub source: Option<String>,
    pub source_type: Option<SourceType>,
    pub title: String,
    pub description: String,
    pub recommended_actions: Option<String>,
    /// The submitter's own id for the indicator.
    #[serde(rename = "externalID")]
    pub external_id: Option<String>,
    /// The submitter's identity: the application's client id.
    pub created_by: String,
    pub created_by_source: Option<String>,
    pub created_by_display_name: Option<String>,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub creation_time_date_time_utc: OffsetDateTime,
    /// When the indicator stops being active; null never expires. Expired indicators are left
    /// out of `GET /api/indicators` unless its `$filter` names `expirationTime`.
    #[serde(with = "crate::timefmt::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expiration_time: Option<OffsetDateTime>,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub last_update_time: OffsetDateTime,
    pub last_updated_by: Option<String>,
    /// One of Informational, Low, Medium, High.
    pub severity: Severity,
    pub generate_alert: bool,
    pub educate_url: Option<String>,
    /// Device groups the indicator applies to; empty means every device.
    pub rbac_group_names: Vec<String>,
    pub rbac_group_ids: Vec<String>,
    /// Rampart extension: the value is an internal address (RFC 1918, loopback, link-local,
    /// unique-local…) or a URL on one, which submissions must confirm with `"allowInternal":
    /// true`. Present only when true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_internal: bool,
}

/// The body of `POST /api/indicators` and one item of `POST /api/indicators/import`, as sent.
/// Every field is optional here so that [`IndicatorRequest::validate`] can say precisely what
/// is missing or wrong.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IndicatorRequest {
    pub indicator_value: Option<String>,
    #[schema(value_type = Option<IndicatorType>)]
    pub indicator_type: Option<IndicatorType>,
    /// One of Allowed, Audit, Warn, Block, BlockAndRemediate, or the legacy Alert (= Audit with
    /// generateAlert) and AlertAndBlock (= BlockAndRemediate).
    #[schema(value_type = Option<String>)]
    pub action: Option<RequestedAction>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub application: Option<String>,
    #[serde(rename = "externalID")]
    pub external_id: Option<String>,
    #[serde(default, with = "crate::timefmt::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expiration_time: Option<OffsetDateTime>,
    #[serde(default, deserialize_with = "indicator_severity")]
    #[schema(value_type = Option<String>)]
    pub severity: Option<Severity>,
    pub recommended_actions: Option<String>,
    /// Device groups (by name) the indicator applies to; each must exist. Absent or empty: all
    /// devices.
    pub rbac_group_names: Option<Vec<String>>,
    /// Rampart extension: the device groups by id (MDE fills these from the names).
    pub rbac_group_ids: Option<Vec<String>>,
    pub generate_alert: Option<bool>,
    pub educate_url: Option<String>,
    /// Rampart extension: accept an internal address (or a URL on one) as the value.
    pub allow_internal: Option<bool>,
}

fn indicator_severity<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Severity>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    match s.parse::<Severity>() {
        Ok(Severity::UnSpecified) | Err(_) => Err(serde::de::Error::custom(format!(
            "'{}' is not one of {}",
            shorten(&s),
            SEVERITIES.join(", ")
        ))),
        Ok(v) => Ok(Some(v)),
    }
}

/// A checked, normalised submission, ready to create or update an indicator.
#[derive(Clone, Debug, PartialEq)]
pub struct IndicatorSubmission {
    pub indicator_value: String,
    pub indicator_type: IndicatorType,
    pub action: IndicatorAction,
    pub generate_alert: bool,
    pub title: String,
    pub description: String,
    pub application: Option<String>,
    pub external_id: Option<String>,
    pub expiration_time: Option<OffsetDateTime>,
    pub severity: Severity,
    pub recommended_actions: Option<String>,
    pub rbac_group_names: Vec<String>,
    pub rbac_group_ids: Vec<String>,
    pub educate_url: Option<String>,
    pub allow_internal: bool,
}

/// Who submits: an application (client id and display name) or a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitter {
    /// The client id of an app, the UPN of a user.
    pub id: String,
    pub name: String,
    pub kind: SourceType,
}

/// Who writes indicators, and how far their rights reach.
#[derive(Clone, Debug)]
pub struct IndicatorWriter {
    pub submitter: Submitter,
    /// May change and delete indicators others created (`Ti.ReadWrite.All`); without it only
    /// the submitter's own (`Ti.ReadWrite`).
    pub all: bool,
}

impl IndicatorWriter {
    /// The `createdBy` an indicator must have for this writer to touch it, if any.
    pub fn owner(&self) -> Option<&str> {
        (!self.all).then_some(self.submitter.id.as_str())
    }
}

/// What became of one submission.
#[derive(Clone, Debug, PartialEq)]
pub enum Submitted {
    Created(Indicator),
    Updated(Indicator),
    /// Nothing written for this one (e.g. the indicator belongs to another application).
    Refused(Rejection),
}

/// The result of a batch delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchDeleted {
    /// All of them were deleted; how many.
    Deleted(usize),
    /// These ids do not exist (or the caller may not see them): nothing was deleted.
    NotFound(Vec<String>),
}

/// One item of the answer to `POST /api/indicators/import`, in the order of the request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportIndicatorResult {
    /// The indicator's id; null when the item failed.
    pub id: Option<String>,
    /// The indicator's value: as stored (canonical form) on success, as sent on failure.
    pub indicator: Option<String>,
    pub is_failed: bool,
    /// Why the item failed, naming the field at fault.
    pub failure_reason: Option<String>,
}

/// The answer to `POST /api/indicators/import`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportIndicatorResults {
    #[serde(rename = "@odata.context")]
    pub context: String,
    pub value: Vec<ImportIndicatorResult>,
}

/// Most indicators one import (and ids one batch delete) may carry, as in MDE.
pub const MAX_BATCH: usize = 500;

/// Longest URL indicator accepted (index entries must stay small on every backend).
pub const MAX_URL_LEN: usize = 2048;
/// Longest device-group name or id accepted.
pub const MAX_GROUP_LEN: usize = 256;
/// Most device groups one indicator may name.
pub const MAX_GROUPS: usize = 500;

fn missing(name: &str) -> Rejection {
    Rejection::new(
        ErrorCode::MissingRequiredParameter,
        format!("The required parameter '{name}' is missing."),
    )
}

fn invalid(message: impl Into<String>) -> Rejection {
    Rejection::new(ErrorCode::InvalidInput, message)
}

/// The first 100 characters of `s`, for messages that echo client input.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(100) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// A required text field: present and not blank.
fn required_text(v: Option<String>, name: &str) -> Result<String, Rejection> {
    let v = v.ok_or_else(|| missing(name))?;
    if v.trim().is_empty() {
        return Err(invalid(format!("'{name}' must not be empty.")));
    }
    Ok(v)
}

/// Optional text: blank counts as absent.
fn optional_text(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

fn groups(v: Option<Vec<String>>, name: &str) -> Result<Vec<String>, Rejection> {
    let mut out: Vec<String> = Vec::new();
    for g in v.unwrap_or_default() {
        let g = g.trim();
        if g.is_empty() {
            return Err(invalid(format!("'{name}' must not contain empty names.")));
        }
        if g.chars().count() > MAX_GROUP_LEN {
            return Err(invalid(format!(
                "'{name}' entries are at most {MAX_GROUP_LEN} characters; '{}' is longer.",
                shorten(g)
            )));
        }
        if !out.iter().any(|o| o == g) {
            out.push(g.to_owned());
        }
    }
    if out.len() > MAX_GROUPS {
        return Err(invalid(format!(
            "'{name}' may name at most {MAX_GROUPS} device groups."
        )));
    }
    Ok(out)
}

impl IndicatorRequest {
    /// Checks and normalises the submission; `now` decides whether `expirationTime` is past.
    pub fn validate(self, now: OffsetDateTime) -> Result<IndicatorSubmission, Rejection> {
        let raw_value = self
            .indicator_value
            .ok_or_else(|| missing("indicatorValue"))?;
        let indicator_type = self
            .indicator_type
            .ok_or_else(|| missing("indicatorType"))?;
        let requested = self.action.ok_or_else(|| missing("action"))?;
        let title = required_text(self.title, "title")?;
        let description = required_text(self.description, "description")?;

        let (action, generate_alert) = match requested {
            RequestedAction::Current(a) => (a, self.generate_alert.unwrap_or(false)),
            RequestedAction::Alert => {
                if self.generate_alert == Some(false) {
                    return Err(invalid(
                        "The legacy action 'Alert' means Audit with generateAlert true; it cannot be combined with generateAlert false.",
                    ));
                }
                (IndicatorAction::Audit, true)
            }
            RequestedAction::AlertAndBlock => (
                IndicatorAction::BlockAndRemediate,
                self.generate_alert.unwrap_or(true),
            ),
        };
        if !indicator_type.allowed_actions().contains(&action) {
            let allowed: Vec<&str> = indicator_type
                .allowed_actions()
                .iter()
                .map(|a| a.as_str())
                .collect();
            let legacy = match requested {
                RequestedAction::AlertAndBlock => {
                    " (AlertAndBlock is the legacy name of BlockAndRemediate)"
                }
                _ => "",
            };
            return Err(invalid(format!(
                "The action '{action}'{legacy} does not apply to {indicator_type} indicators; allowed: {}.",
                allowed.join(", ")
            )));
        }
        if action == IndicatorAction::Audit && !generate_alert {
            return Err(invalid(
                "The action 'Audit' requires generateAlert to be true.",
            ));
        }
        if let Some(t) = self.expiration_time
            && t <= now
        {
            return Err(invalid(format!(
                "expirationTime {} is in the past.",
                crate::timefmt::format(t)
            )));
        }
        let allow_internal = self.allow_internal.unwrap_or(false);
        let indicator_value = normalize_value(indicator_type, &raw_value, allow_internal)?;
        let educate_url =
            match optional_text(self.educate_url) {
                Some(u) => Some(normalize_url(u.trim(), true, true).map_err(|m| {
                    Rejection::new(ErrorCode::InvalidUrl, format!("educateUrl: {m}"))
                })?),
                None => None,
            };
        Ok(IndicatorSubmission {
            indicator_value,
            indicator_type,
            action,
            generate_alert,
            title,
            description,
            application: optional_text(self.application),
            external_id: optional_text(self.external_id),
            expiration_time: self.expiration_time.map(truncate_to_micros),
            severity: self.severity.unwrap_or(Severity::Informational),
            recommended_actions: optional_text(self.recommended_actions),
            rbac_group_names: groups(self.rbac_group_names, "rbacGroupNames")?,
            rbac_group_ids: groups(self.rbac_group_ids, "rbacGroupIds")?,
            educate_url,
            allow_internal,
        })
    }
}

impl IndicatorSubmission {
    /// Whether the submission scopes the indicator to device groups.
    pub fn names_groups(&self) -> bool {
        !self.rbac_group_names.is_empty() || !self.rbac_group_ids.is_empty()
    }

    /// Resolves the device groups the submission names (by `rbacGroupNames`, as MDE, or by
    /// `rbacGroupIds`) against the tenant's `groups`: each must exist, and afterwards both lists
    /// name the same groups, names in the tenant's spelling and ids as strings.
    pub fn resolve_groups(&mut self, groups: &[MachineGroup]) -> Result<(), Rejection> {
        if !self.names_groups() {
            return Ok(());
        }
        let mut chosen: Vec<&MachineGroup> = Vec::new();
        for name in &self.rbac_group_names {
            let g = groups
                .iter()
                .find(|g| g.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    invalid(format!(
                        "rbacGroupNames: the device group '{}' does not exist.",
                        shorten(name)
                    ))
                })?;
            if !chosen.iter().any(|c| c.id == g.id) {
                chosen.push(g);
            }
        }
        for id in &self.rbac_group_ids {
            let g = groups
                .iter()
                .find(|g| g.id.to_string() == *id)
                .ok_or_else(|| {
                    invalid(format!(
                        "rbacGroupIds: the device group {} does not exist.",
                        shorten(id)
                    ))
                })?;
            if !chosen.iter().any(|c| c.id == g.id) {
                chosen.push(g);
            }
        }
        self.rbac_group_names = chosen.iter().map(|g| g.name.clone()).collect();
        self.rbac_group_ids = chosen.iter().map(|g| g.id.to_string()).collect();
        Ok(())
    }
}

/// Times are stored with microsecond precision; entities carry exactly what is stored.
pub fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    crate::timefmt::from_micros(crate::timefmt::to_micros(t))
}

impl Indicator {
    /// A new indicator from a submission.
    pub fn create(
        s: IndicatorSubmission,
        id: String,
        by: &Submitter,
        now: OffsetDateTime,
    ) -> Indicator {
        let now = truncate_to_micros(now);
        Indicator {
            id,
            indicator_value: s.indicator_value,
            indicator_type: s.indicator_type,
            action: s.action,
            application: s.application,
            source: Some(by.name.clone()),
            source_type: Some(by.kind),
            title: s.title,
            description: s.description,
            recommended_actions: s.recommended_actions,
            external_id: s.external_id,
            created_by: by.id.clone(),
            created_by_source: Some(by.name.clone()),
            created_by_display_name: Some(by.name.clone()),
            creation_time_date_time_utc: now,
            expiration_time: s.expiration_time,
            last_update_time: now,
            last_updated_by: Some(by.id.clone()),
            severity: s.severity,
            generate_alert: s.generate_alert,
            educate_url: s.educate_url,
            rbac_group_names: s.rbac_group_names,
            rbac_group_ids: s.rbac_group_ids,
            allow_internal: s.allow_internal,
        }
    }

    /// Applies a submission for the same value and type: every submitted property replaces
    /// the stored one, except the identity, the creator and `application` (set on creation
    /// only, as in MDE).
    pub fn update(&mut self, s: IndicatorSubmission, by: &Submitter, now: OffsetDateTime) {
        self.action = s.action;
        self.title = s.title;
        self.description = s.description;
        self.recommended_actions = s.recommended_actions;
        self.external_id = s.external_id;
        self.expiration_time = s.expiration_time;
        self.severity = s.severity;
        self.generate_alert = s.generate_alert;
        self.educate_url = s.educate_url;
        self.rbac_group_names = s.rbac_group_names;
        self.rbac_group_ids = s.rbac_group_ids;
        self.allow_internal = s.allow_internal;
        self.last_update_time = truncate_to_micros(now);
        self.last_updated_by = Some(by.id.clone());
    }

    /// The submission that stores this indicator as it is (to change one property of it, e.g.
    /// to expire it, through the ordinary submission path).
    pub fn resubmission(&self) -> IndicatorSubmission {
        IndicatorSubmission {
            indicator_value: self.indicator_value.clone(),
            indicator_type: self.indicator_type,
            action: self.action,
            generate_alert: self.generate_alert,
            title: self.title.clone(),
            description: self.description.clone(),
            application: self.application.clone(),
            external_id: self.external_id.clone(),
            expiration_time: self.expiration_time,
            severity: self.severity,
            recommended_actions: self.recommended_actions.clone(),
            rbac_group_names: self.rbac_group_names.clone(),
            rbac_group_ids: self.rbac_group_ids.clone(),
            educate_url: self.educate_url.clone(),
            allow_internal: self.allow_internal,
        }
    }

    /// Whether the indicator is active at `now` (not expired).
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.expiration_time.is_none_or(|t| t > now)
    }
}

// ---------------------------------------------------------------------------------------------
// Values

/// Checks `raw` as a value of type `ty` and returns its canonical form, or a rejection with the
/// MDE code of that type (`InvalidHashValue`, `InvalidIpAddress`, `InvalidDomainName`,
/// `InvalidUrl`; `InvalidInput` for an empty value).
pub fn normalize_value(
    ty: IndicatorType,
    raw: &str,
    allow_internal: bool,
) -> Result<String, Rejection> {
    let v = raw.trim();
    if v.is_empty() {
        return Err(invalid("The indicator value is empty."));
    }
    match ty {
        IndicatorType::FileSha1 => hash(v, 40, "FileSha1", "SHA-1"),
        IndicatorType::FileSha256 => hash(v, 64, "FileSha256", "SHA-256"),
        IndicatorType::FileMd5 => hash(v, 32, "FileMd5", "MD5"),
        IndicatorType::CertificateThumbprint => {
            hash(v, 40, "CertificateThumbprint", "SHA-1 thumbprint")
        }
        IndicatorType::IpAddress => normalize_ip(v, allow_internal)
            .map_err(|m| Rejection::new(ErrorCode::InvalidIpAddress, m)),
        IndicatorType::DomainName => {
            normalize_domain(v).map_err(|m| Rejection::new(ErrorCode::InvalidDomainName, m))
        }
        IndicatorType::Url => normalize_url(v, allow_internal, false)
            .map_err(|m| Rejection::new(ErrorCode::InvalidUrl, m)),
    }
}

fn hash(v: &str, len: usize, ty: &str, what: &str) -> Result<String, Rejection> {
    let err = |detail: String| {
        Rejection::new(
            ErrorCode::InvalidHashValue,
            format!(
                "'{}' is not a valid {ty} value: a {what} is {len} hexadecimal characters; {detail}.",
                shorten(v)
            ),
        )
    };
    if let Some(bad) = v.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(err(format!("'{bad}' is not hexadecimal")));
    }
    if v.len() != len {
        return Err(err(format!("found {}", v.len())));
    }
    Ok(v.to_ascii_lowercase())
}

/// Why an address is internal, when it is.
fn internal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    match o {
        [0, ..] => Some("'this network' (0.0.0.0/8)"),
        [10, ..] => Some("private (RFC 1918)"),
        [172, b, ..] if (16..32).contains(&b) => Some("private (RFC 1918)"),
        [192, 168, ..] => Some("private (RFC 1918)"),
        [127, ..] => Some("loopback"),
        [169, 254, ..] => Some("link-local"),
        [100, b, ..] if (64..128).contains(&b) => Some("shared address space (RFC 6598)"),
        [255, 255, 255, 255] => Some("broadcast"),
        _ => None,
    }
}

fn internal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Some("unique local (fc00::/7)")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some("link-local (fe80::/10)")
    } else if s[0] & 0xffc0 == 0xfec0 {
        Some("site-local (fec0::/10)")
    } else if let Some(v4) = ip.to_ipv4_mapped() {
        internal_v4(v4)
    } else {
        None
    }
}

/// Whether an address is internal (private, loopback, link-local, shared, unique local…): the
/// ranges indicators refuse without `allowInternal`.
pub fn is_internal_ip(ip: IpAddr) -> bool {
    internal_ip(ip.to_canonical()).is_some()
}

fn internal_ip(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => internal_v4(a),
        IpAddr::V6(a) => internal_v6(a),
    }
}

/// The internal ranges, for deciding whether a CIDR network reaches into one.
fn internal_nets() -> Vec<(IpNet, &'static str)> {
    let n = |s: &str, why| (s.parse::<IpNet>().expect("valid constant network"), why);
    vec![
        n("0.0.0.0/8", "'this network' (0.0.0.0/8)"),
        n("10.0.0.0/8", "private (RFC 1918)"),
        n("172.16.0.0/12", "private (RFC 1918)"),
        n("192.168.0.0/16", "private (RFC 1918)"),
        n("127.0.0.0/8", "loopback"),
        n("169.254.0.0/16", "link-local"),
        n("100.64.0.0/10", "shared address space (RFC 6598)"),
        n("255.255.255.255/32", "broadcast"),
        n("::/128", "unspecified"),
        n("::1/128", "loopback"),
        n("fc00::/7", "unique local (fc00::/7)"),
        n("fe80::/10", "link-local (fe80::/10)"),
        n("fec0::/10", "site-local (fec0::/10)"),
        n("::ffff:0.0.0.0/104", "IPv4-mapped 'this network'"),
        n("::ffff:10.0.0.0/104", "IPv4-mapped private (RFC 1918)"),
        n("::ffff:172.16.0.0/108", "IPv4-mapped private (RFC 1918)"),
        n("::ffff:192.168.0.0/112", "IPv4-mapped private (RFC 1918)"),
        n("::ffff:127.0.0.0/104", "IPv4-mapped loopback"),
        n("::ffff:169.254.0.0/112", "IPv4-mapped link-local"),
        n("::ffff:100.64.0.0/106", "IPv4-mapped shared address space"),
    ]
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

const INTERNAL_HINT: &str = "internal addresses are accepted only with \"allowInternal\": true";

/// An IPv4 or IPv6 address, or a CIDR network, in canonical form: IPv6 compressed
/// (RFC 5952), IPv4-mapped IPv6 as IPv4, a network at its base address, a full-length prefix
/// as the plain address.
pub fn normalize_ip(v: &str, allow_internal: bool) -> Result<String, String> {
    let bad = |why: &str| format!("'{}' is not a valid IP address: {why}.", shorten(v));
    if v.contains('-') {
        return Err(bad(
            "address ranges are not supported; give a CIDR network such as 203.0.113.0/24",
        ));
    }
    if v.contains('*') {
        return Err(bad(
            "wildcards are not supported; give a CIDR network such as 203.0.113.0/24",
        ));
    }
    let (addr_text, prefix_text) = match v.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    let addr: IpAddr = addr_text.parse().map_err(|_| {
        bad("expected an IPv4 address (203.0.113.5), an IPv6 address (2001:db8::5) or a CIDR network")
    })?;
    let Some(prefix_text) = prefix_text else {
        let addr = addr.to_canonical();
        if !allow_internal && let Some(why) = internal_ip(addr) {
            return Err(format!(
                "{addr} is an internal address ({why}); {INTERNAL_HINT}."
            ));
        }
        return Ok(addr.to_string());
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix_text
        .parse::<u8>()
        .ok()
        .filter(|p| {
            *p <= max
                && prefix_text.bytes().all(|b| b.is_ascii_digit())
                && (prefix_text == "0" || !prefix_text.starts_with('0'))
        })
        .ok_or_else(|| {
            bad(&format!(
                "the prefix length must be a number from 0 to {max}"
            ))
        })?;
    let net = IpNet::new(addr, prefix)
        .map_err(|_| bad("invalid prefix length"))?
        .trunc();
    if prefix == max {
        return normalize_ip(&addr.to_string(), allow_internal);
    }
    if !allow_internal
        && let Some((_, why)) = internal_nets().iter().find(|(n, _)| overlaps(n, &net))
    {
        return Err(format!(
            "{net} includes internal addresses ({why}); {INTERNAL_HINT}."
        ));
    }
    Ok(net.to_string())
}

/// Checks a host name; returns the lower-case form or why it is not one.
fn check_hostname(d: &str) -> Result<String, String> {
    if !d.is_ascii() {
        return Err(
            "internationalised names must be given in their ASCII (punycode, xn--…) form".into(),
        );
    }
    let d = d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase();
    if d.is_empty() {
        return Err("the name is empty".into());
    }
    if d.len() > 253 {
        return Err(format!(
            "a domain name is at most 253 characters, this one has {}",
            d.len()
        ));
    }
    let labels: Vec<&str> = d.split('.').collect();
    if labels.len() < 2 {
        return Err("a domain name has at least two labels (example.com)".into());
    }
    for l in &labels {
        if l.is_empty() {
            return Err("it has an empty label ('..')".into());
        }
        if l.len() > 63 {
            return Err(format!(
                "the label '{}' is longer than 63 characters",
                shorten(l)
            ));
        }
        if let Some(c) = l
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "'{c}' may not appear in a domain name (letters, digits, '-' and '_' only)"
            ));
        }
        if l.starts_with('-') || l.ends_with('-') {
            return Err(format!("the label '{l}' starts or ends with '-'"));
        }
    }
    let tld = labels[labels.len() - 1];
    let tld_ok =
        tld.starts_with("xn--") || (tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    if !tld_ok {
        return Err(format!("'{tld}' is not a top-level domain"));
    }
    Ok(d)
}

/// A domain name in lower case without a trailing dot. A domain indicator also covers its
/// subdomains, so wildcards are neither needed nor accepted.
pub fn normalize_domain(v: &str) -> Result<String, String> {
    let bad = |why: &str| format!("'{}' is not a valid domain name: {why}.", shorten(v));
    if v.contains("://") || v.contains('/') {
        return Err(bad("it looks like a URL; use indicatorType Url for URLs"));
    }
    if v.starts_with("*.") {
        return Err(bad(
            "wildcards are not needed: a domain indicator covers all its subdomains",
        ));
    }
    if v.parse::<IpAddr>().is_ok() {
        return Err(bad("it is an IP address; use indicatorType IpAddress"));
    }
    check_hostname(v).map_err(|why| bad(&why))
}

/// A URL: `http://` or `https://` (or no scheme, for `host/path`), a valid host name or IP
/// address, an optional port, then any path, query and fragment. Scheme and host are
/// lower-cased; the rest is kept as given. `require_scheme` is for `educateUrl`.
pub fn normalize_url(
    v: &str,
    allow_internal: bool,
    require_scheme: bool,
) -> Result<String, String> {
    let bad = |why: &str| format!("'{}' is not a valid URL: {why}.", shorten(v));
    if v.len() > MAX_URL_LEN {
        return Err(format!(
            "a URL indicator is at most {MAX_URL_LEN} characters; this one has {}.",
            v.len()
        ));
    }
    if let Some(c) = v.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(&format!("it contains the character {c:?}")));
    }
    let (scheme, rest) = match v.find("://") {
        Some(i) => {
            let scheme = v[..i].to_ascii_lowercase();
            if scheme != "http" && scheme != "https" {
                return Err(bad(&format!(
                    "the scheme '{}' is not supported; use http or https",
                    shorten(&v[..i])
                )));
            }
            (Some(scheme), &v[i + 3..])
        }
        None if require_scheme => return Err(bad("it must start with http:// or https://")),
        None => (None, v),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.is_empty() {
        return Err(bad("it has no host"));
    }
    if authority.contains('@') {
        return Err(bad("user names and passwords in URLs are not supported"));
    }
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let Some((h, after)) = inner.split_once(']') else {
            return Err(bad("an IPv6 host must be closed with ']'"));
        };
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad("unexpected text after the IPv6 host"))?,
            ),
        };
        let ip: Ipv6Addr = h.parse().map_err(|_| bad("the IPv6 host is not valid"))?;
        (HostKind::Ip(IpAddr::V6(ip)), port)
    } else {
        let (h, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        match h.parse::<Ipv4Addr>() {
            Ok(ip) => (HostKind::Ip(IpAddr::V4(ip)), port),
            Err(_) => (HostKind::Name(h), port),
        }
    };
    if let Some(p) = port
        && (p.is_empty()
            || !p.bytes().all(|b| b.is_ascii_digit())
            || p.parse::<u16>().map_or(true, |n| n == 0))
    {
        return Err(bad("the port must be a number from 1 to 65535"));
    }
    let host_text = match host {
        HostKind::Ip(ip) => {
            let ip = ip.to_canonical();
            if !allow_internal && let Some(why) = internal_ip(ip) {
                return Err(format!(
                    "'{}' points to an internal address ({why}); {INTERNAL_HINT}.",
                    shorten(v)
                ));
            }
            match ip {
                IpAddr::V6(a) => format!("[{a}]"),
                IpAddr::V4(a) => a.to_string(),
            }
        }
        HostKind::Name(h) => {
            check_hostname(h).map_err(|why| bad(&format!("its host is not valid: {why}")))?
        }
    };
    let mut out = String::with_capacity(v.len());
    if let Some(s) = scheme {
        out.push_str(&s);
        out.push_str("://");
    }
    out.push_str(&host_text);
    if let Some(p) = port {
        out.push(':');
        out.push_str(p);
    }
    out.push_str(tail);
    Ok(out)
}

enum HostKind<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

// ---------------------------------------------------------------------------------------------
// Listing

/// `/api/indicators`: the filterable properties of reference §3.2.
pub static INDICATORS: EntitySet = EntitySet {
    name: "Indicators",
    fields: &[
        Field::new("indicatorValue", FieldType::String).not_null(),
        Field::new("indicatorType", FieldType::Enum(IndicatorType::VARIANTS)).not_null(),
        Field::new("action", FieldType::Enum(IndicatorAction::VARIANTS)).not_null(),
        Field::new("application", FieldType::String),
        Field::new("title", FieldType::String).not_null(),
        Field::new("severity", FieldType::Enum(SEVERITIES)).not_null(),
        Field::new("generateAlert", FieldType::Bool).not_null(),
        Field::new("createdBy", FieldType::String).not_null(),
        Field::new("createdByDisplayName", FieldType::String),
        Field::new("creationTimeDateTimeUtc", FieldType::DateTime).not_null(),
        Field::new("expirationTime", FieldType::DateTime),
        Field::new("rbacGroupNames", FieldType::StringCollection),
        Field::new("rbacGroupIds", FieldType::StringCollection),
    ],
    expand: &[],
};

/// The indicators active at `now`: `expirationTime eq null or expirationTime gt now`.
pub fn active_scope(now: OffsetDateTime) -> Filter {
    Filter::Or(
        Box::new(Filter::Compare {
            field: "expirationTime".into(),
            op: CmpOp::Eq,
            value: Literal::Null,
        }),
        Box::new(Filter::Compare {
            field: "expirationTime".into(),
            op: CmpOp::Gt,
            value: Literal::DateTime(now),
        }),
    )
}

/// The indicators an app created: `createdBy eq '<client id>'`.
pub fn owner_scope(created_by: &str) -> Filter {
    Filter::Compare {
        field: "createdBy".into(),
        op: CmpOp::Eq,
        value: Literal::String(created_by.to_owned()),
    }
}

/// Whether a (validated) filter names `field` anywhere.
pub fn mentions(filter: &Filter, field: &str) -> bool {
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => mentions(a, field) || mentions(b, field),
        Filter::Not(a) => mentions(a, field),
        Filter::Compare { field: f, .. }
        | Filter::In { field: f, .. }
        | Filter::StrFn { field: f, .. } => f.eq_ignore_ascii_case(field),
        Filter::Any {
            field: f,
            predicate,
            ..
        } => f.eq_ignore_ascii_case(field) || mentions(predicate, field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odata::QueryOptions;

    fn now() -> OffsetDateTime {
        crate::timefmt::parse("2025-01-01T00:00:00Z").unwrap()
    }

    fn req(value: &str, ty: IndicatorType, action: &str) -> IndicatorRequest {
        IndicatorRequest {
            indicator_value: Some(value.into()),
            indicator_type: Some(ty),
            action: Some(action.parse().unwrap()),
            title: Some("t".into()),
            description: Some("d".into()),
            ..IndicatorRequest::default()
        }
    }

    fn code(r: Result<IndicatorSubmission, Rejection>) -> ErrorCode {
        r.unwrap_err().code
    }

    #[test]
    fn required_fields_are_named() {
        for (field, strip) in [
            (
                "indicatorValue",
                (|r: &mut IndicatorRequest| r.indicator_value = None) as fn(&mut _),
            ),
            ("indicatorType", |r| r.indicator_type = None),
            ("action", |r| r.action = None),
            ("title", |r| r.title = None),
            ("description", |r| r.description = None),
        ] {
            let mut r = req("1.2.3.4", IndicatorType::IpAddress, "Block");
            strip(&mut r);
            let e = r.validate(now()).unwrap_err();
            assert_eq!(e.code, ErrorCode::MissingRequiredParameter);
            assert!(e.message.contains(&format!("'{field}'")), "{}", e.message);
        }
        let mut r = req("1.2.3.4", IndicatorType::IpAddress, "Block");
        r.title = Some("  ".into());
        assert_eq!(code(r.validate(now())), ErrorCode::InvalidInput);
        let e = req("  ", IndicatorType::IpAddress, "Block")
            .validate(now())
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("empty"), "{}", e.message);
    }

    #[test]
    fn hashes_are_checked_and_lower_cased() {
        let sha256 = "A".repeat(64);
        let s = req(&sha256, IndicatorType::FileSha256, "Block")
            .validate(now())
            .unwrap();
        assert_eq!(s.indicator_value, "a".repeat(64));
        for (ty, len) in [
            (IndicatorType::FileSha1, 40),
            (IndicatorType::FileSha256, 64),
            (IndicatorType::FileMd5, 32),
            (IndicatorType::CertificateThumbprint, 40),
        ] {
            let action = if ty == IndicatorType::CertificateThumbprint {
                "Allowed"
            } else {
                "Block"
            };
            assert!(req(&"0".repeat(len), ty, action).validate(now()).is_ok());
            let e = req(&"0".repeat(len - 1), ty, action)
                .validate(now())
                .unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidHashValue, "{ty}");
            assert!(
                e.message.contains(&format!("{len} hexadecimal"))
                    && e.message.contains(&format!("found {}", len - 1)),
                "{}",
                e.message
            );
            let e = req(&format!("{}g", "0".repeat(len - 1)), ty, action)
                .validate(now())
                .unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidHashValue);
            assert!(
                e.message.contains("'g' is not hexadecimal"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn ip_addresses_and_networks() {
        let ok = |v: &str| normalize_ip(v, false).unwrap();
        assert_eq!(ok("8.8.8.8"), "8.8.8.8");
        assert_eq!(ok(" 8.8.8.8 ".trim()), "8.8.8.8");
        assert_eq!(ok("203.0.113.77/24"), "203.0.113.0/24");
        assert_eq!(ok("203.0.113.5/32"), "203.0.113.5");
        assert_eq!(ok("2001:0DB8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
        assert_eq!(ok("2001:db8:1:2:3:4:5:6/48"), "2001:db8:1::/48");
        assert_eq!(ok("2001:db8::1/128"), "2001:db8::1");
        assert_eq!(ok("::ffff:8.8.4.4"), "8.8.4.4");
        for bad in [
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3.4/33",
            "1.2.3.4/",
            "1.2.3.4/08",
            "1.2.3.4/-1",
            "2001:db8::1/129",
            "1.2.3.4-1.2.3.9",
            "1.2.3.*",
            "fe80::1%eth0",
            "example.com",
            "1.2.3.4 /24",
        ] {
            assert!(normalize_ip(bad, true).is_err(), "{bad}");
        }
        assert!(
            normalize_ip("1.2.3.4-1.2.3.9", false)
                .unwrap_err()
                .contains("ranges are not supported")
        );
    }

    #[test]
    fn internal_addresses_need_allow_internal() {
        for internal in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.10.10",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "10.0.0.0/8",
            "192.168.0.0/24",
            "0.0.0.0/0",
            "172.0.0.0/8",
            "fc00::/7",
            "::/0",
        ] {
            let e = normalize_ip(internal, false).unwrap_err();
            assert!(e.contains("allowInternal"), "{internal}: {e}");
            assert!(normalize_ip(internal, true).is_ok(), "{internal}");
        }
        for external in [
            "172.32.0.1",
            "172.15.255.255",
            "100.128.0.1",
            "11.0.0.0/8",
            "203.0.113.0/24",
            "2001:db8::/32",
            "fe00::1",
        ] {
            assert!(normalize_ip(external, false).is_ok(), "{external}");
        }
        let mut r = req("10.0.0.1", IndicatorType::IpAddress, "Block");
        assert_eq!(code(r.clone().validate(now())), ErrorCode::InvalidIpAddress);
        r.allow_internal = Some(true);
        let s = r.validate(now()).unwrap();
        assert!(s.allow_internal);
    }

    #[test]
    fn domains() {
        assert_eq!(normalize_domain("Example.COM.").unwrap(), "example.com");
        assert_eq!(normalize_domain("a-b.xn--p1ai").unwrap(), "a-b.xn--p1ai");
        assert_eq!(
            normalize_domain("_dmarc.example.org").unwrap(),
            "_dmarc.example.org"
        );
        for (bad, why) in [
            ("example", "two labels"),
            ("exa mple.com", "' ' may not appear"),
            ("-a.com", "starts or ends"),
            ("a..com", "empty label"),
            ("*.example.com", "wildcards"),
            ("http://example.com", "URL"),
            ("example.com/path", "URL"),
            ("1.2.3.4", "IpAddress"),
            ("example.123", "top-level"),
            ("bücher.de", "punycode"),
        ] {
            let e = normalize_domain(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let long = format!("{}.com", "a".repeat(64));
        assert!(normalize_domain(&long).unwrap_err().contains("63"));
        let e = req("not a domain", IndicatorType::DomainName, "Block")
            .validate(now())
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidDomainName);
    }

    #[test]
    fn urls() {
        let ok = |v: &str| normalize_url(v, false, false).unwrap();
        assert_eq!(
            ok("HTTPS://Example.COM/Block?q=A#F"),
            "https://example.com/Block?q=A#F"
        );
        assert_eq!(ok("example.com/path"), "example.com/path");
        assert_eq!(ok("http://8.8.8.8:8080/x"), "http://8.8.8.8:8080/x");
        assert_eq!(ok("http://[2001:DB8::1]/x"), "http://[2001:db8::1]/x");
        for (bad, why) in [
            ("ftp://example.com/", "scheme"),
            ("https://", "no host"),
            ("https://exa mple.com/", "character"),
            ("https://user:pw@example.com/", "passwords"),
            ("https://example.com:99999/", "port"),
            ("https://example.com:/", "port"),
            ("https://localhost/", "two labels"),
            ("https://[::1/", "closed"),
            ("https://10.0.0.1/", "allowInternal"),
            ("https://[fd00::1]/", "allowInternal"),
        ] {
            let e = normalize_url(bad, false, false).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(normalize_url("https://10.0.0.1/", true, false).is_ok());
        assert!(normalize_url("example.com", true, true).is_err());
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(
            normalize_url(&long, false, false)
                .unwrap_err()
                .contains("at most")
        );
        let e = req("ftp://x.com", IndicatorType::Url, "Block")
            .validate(now())
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidUrl);
        let mut r = req("https://example.com", IndicatorType::Url, "Warn");
        r.educate_url = Some("not a url".into());
        let e = r.validate(now()).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidUrl);
        assert!(e.message.starts_with("educateUrl:"), "{}", e.message);
    }

    #[test]
    fn actions_per_type_and_legacy_aliases() {
        use IndicatorType::*;
        let sha = "a".repeat(64);
        let cases: &[(IndicatorType, &str)] = &[
            (FileSha256, &sha),
            (IpAddress, "8.8.8.8"),
            (DomainName, "example.com"),
            (Url, "https://example.com/x"),
            (CertificateThumbprint, &sha[..40]),
        ];
        for (ty, value) in cases {
            for a in IndicatorAction::VARIANTS {
                let mut r = req(value, *ty, a);
                r.generate_alert = Some(true);
                let allowed = ty.allowed_actions().iter().any(|x| x.as_str() == *a);
                let res = r.validate(now());
                assert_eq!(res.is_ok(), allowed, "{ty} {a}: {res:?}");
                if !allowed {
                    assert_eq!(res.unwrap_err().code, ErrorCode::InvalidInput);
                }
            }
        }
        let s = req(&sha, FileSha256, "Alert").validate(now()).unwrap();
        assert_eq!((s.action, s.generate_alert), (IndicatorAction::Audit, true));
        let mut r = req(&sha, FileSha256, "Alert");
        r.generate_alert = Some(false);
        assert_eq!(code(r.validate(now())), ErrorCode::InvalidInput);
        let s = req(&sha, FileSha256, "alertandblock")
            .validate(now())
            .unwrap();
        assert_eq!(
            (s.action, s.generate_alert),
            (IndicatorAction::BlockAndRemediate, true)
        );
        let e = req("8.8.8.8", IpAddress, "AlertAndBlock")
            .validate(now())
            .unwrap_err();
        assert!(e.message.contains("legacy name"), "{}", e.message);
        // Audit without an alert is refused.
        let e = req(&sha, FileSha256, "Audit").validate(now()).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("generateAlert"), "{}", e.message);
        assert!(
            "Nope"
                .parse::<RequestedAction>()
                .unwrap_err()
                .contains("legacy")
        );
    }

    #[test]
    fn expiration_and_groups() {
        let mut r = req("8.8.8.8", IndicatorType::IpAddress, "Block");
        r.expiration_time = Some(now() - time::Duration::seconds(1));
        let e = r.clone().validate(now()).unwrap_err();
        assert!(e.message.contains("in the past"), "{}", e.message);
        r.expiration_time = Some(now() + time::Duration::days(1));
        r.rbac_group_names = Some(vec!["A".into(), " A ".into(), "B".into()]);
        let s = r.clone().validate(now()).unwrap();
        assert_eq!(s.rbac_group_names, vec!["A", "B"]);
        r.rbac_group_ids = Some(vec![String::new()]);
        assert_eq!(code(r.validate(now())), ErrorCode::InvalidInput);
    }

    #[test]
    fn device_groups_resolve_by_name_or_id() {
        let group = |id: i64, name: &str| MachineGroup {
            id,
            name: name.into(),
            description: None,
            rank: id,
            rules: Vec::new(),
            automation_level: crate::machine::AutomationLevel::FullRemediation,
            last_update_time: None,
        };
        let groups = [group(3, "Web servers"), group(7, "Laptops")];
        let mut r = req("8.8.8.8", IndicatorType::IpAddress, "Block");
        r.rbac_group_names = Some(vec!["web SERVERS".into()]);
        r.rbac_group_ids = Some(vec!["7".into(), "3".into()]);
        let mut s = r.validate(now()).unwrap();
        assert!(s.names_groups());
        s.resolve_groups(&groups).unwrap();
        assert_eq!(s.rbac_group_names, vec!["Web servers", "Laptops"]);
        assert_eq!(s.rbac_group_ids, vec!["3", "7"]);
        let mut r = req("8.8.8.8", IndicatorType::IpAddress, "Block");
        r.rbac_group_names = Some(vec!["Nope".into()]);
        let e = r
            .validate(now())
            .unwrap()
            .resolve_groups(&groups)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("'Nope' does not exist"), "{}", e.message);
        let mut r = req("8.8.8.8", IndicatorType::IpAddress, "Block");
        r.rbac_group_ids = Some(vec!["99".into()]);
        assert!(r.validate(now()).unwrap().resolve_groups(&groups).is_err());
    }

    #[test]
    fn json_shape_and_request_parsing() {
        let body = r#"{"indicatorValue":"8.8.8.8","indicatorType":"ipaddress","action":"Block",
            "title":"t","description":"d","severity":"high","externalID":"x-1",
            "expirationTime":"2030-01-01T00:00:00Z","unknownField":1}"#;
        let r: IndicatorRequest = serde_json::from_str(body).unwrap();
        let s = r.validate(now()).unwrap();
        assert_eq!(s.severity, Severity::High);
        assert_eq!(s.external_id.as_deref(), Some("x-1"));
        let by = Submitter {
            id: "client".into(),
            name: "App".into(),
            kind: SourceType::AadApp,
        };
        let i = Indicator::create(s, "995".into(), &by, now());
        let v = serde_json::to_value(&i).unwrap();
        for key in [
            "id",
            "indicatorValue",
            "indicatorType",
            "action",
            "application",
            "source",
            "sourceType",
            "title",
            "description",
            "recommendedActions",
            "externalID",
            "createdBy",
            "createdBySource",
            "createdByDisplayName",
            "creationTimeDateTimeUtc",
            "expirationTime",
            "lastUpdateTime",
            "lastUpdatedBy",
            "severity",
            "generateAlert",
            "educateUrl",
            "rbacGroupNames",
            "rbacGroupIds",
        ] {
            assert!(v.get(key).is_some(), "{key} missing from {v}");
        }
        assert!(v.get("allowInternal").is_none());
        assert_eq!(v["sourceType"], "AadApp");
        assert_eq!(v["creationTimeDateTimeUtc"], "2025-01-01T00:00:00Z");
        let back: Indicator = serde_json::from_value(v).unwrap();
        assert_eq!(back, i);

        let e =
            serde_json::from_str::<IndicatorRequest>(r#"{"severity":"UnSpecified"}"#).unwrap_err();
        assert!(e.to_string().contains("Informational"), "{e}");
        assert!(serde_json::from_str::<IndicatorRequest>(r#"{"indicatorType":"Sha512"}"#).is_err());
    }

    #[test]
    fn update_keeps_identity_and_application() {
        let by = Submitter {
            id: "a".into(),
            name: "A".into(),
            kind: SourceType::AadApp,
        };
        let mut r = req("8.8.8.8", IndicatorType::IpAddress, "Block");
        r.application = Some("first".into());
        let mut i = Indicator::create(r.validate(now()).unwrap(), "1".into(), &by, now());
        let mut r = req("8.8.8.8", IndicatorType::IpAddress, "Allowed");
        r.application = Some("second".into());
        let later = now() + time::Duration::hours(1);
        let other = Submitter {
            id: "b".into(),
            ..by.clone()
        };
        i.update(r.validate(later).unwrap(), &other, later);
        assert_eq!(i.id, "1");
        assert_eq!(i.application.as_deref(), Some("first"));
        assert_eq!(i.action, IndicatorAction::Allowed);
        assert_eq!(i.created_by, "a");
        assert_eq!(i.last_updated_by.as_deref(), Some("b"));
        assert_eq!(i.last_update_time, later);
        assert_eq!(i.creation_time_date_time_utc, now());
    }

    #[test]
    fn filter_set_and_scopes() {
        let q = |f: &str| {
            QueryOptions::parse(&[("$filter".to_owned(), f.to_owned())], &INDICATORS)
                .map(|o| o.filter.unwrap())
        };
        for f in [
            "indicatorType eq 'FileSha256' and action eq 'block'",
            "severity eq 'High' and generateAlert eq true",
            "creationTimeDateTimeUtc ge 2024-01-01T00:00:00Z",
            "rbacGroupNames/any(g: g eq 'Servers')",
            "startswith(indicatorValue,'abc')",
            "createdByDisplayName eq 'x' or application eq null or title eq 'y'",
            "rbacGroupIds/any(g: g eq '7') and createdBy eq 'z'",
        ] {
            assert!(q(f).is_ok(), "{f}: {:?}", q(f));
        }
        assert!(q("severity eq 'UnSpecified'").is_err());
        assert!(q("action eq 'AlertAndBlock'").is_err());
        assert!(mentions(
            &q("not (ExpirationTime lt 2024-01-01)").unwrap(),
            "expirationTime"
        ));
        assert!(!mentions(&q("title eq 'x'").unwrap(), "expirationTime"));
        let scope = active_scope(now());
        assert!(mentions(&scope, "expirationTime"));
        assert!(matches!(owner_scope("c"), Filter::Compare { .. }));
    }
}
