//! The application permissions of the MDE API (`WindowsDefenderATP` and Defender XDR roles).
//!
//! These names are the only roles Rampart knows: an app is granted a set of them, they travel in
//! the token's `roles` claim, and every route declares which of them it accepts.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

macro_rules! permissions {
    ($($variant:ident => $name:literal $(| $alias:literal)*, $doc:literal;)*) => {
        /// An MDE application permission (an app role in the token's `roles` claim).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission {
            $(#[doc = $doc] $variant,)*
        }

        impl Permission {
            /// Every permission, in declaration order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            /// The name as it appears in tokens and in the MDE documentation.
            pub fn name(self) -> &'static str {
                match self { $(Permission::$variant => $name,)* }
            }

            /// What the permission allows, for `rampart apps` and the OpenAPI document.
            pub fn description(self) -> &'static str {
                match self { $(Permission::$variant => $doc,)* }
            }
        }

        impl FromStr for Permission {
            type Err = UnknownPermission;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name $(| $alias)* => Ok(Permission::$variant),)*
                    _ => Err(UnknownPermission(s.to_owned())),
                }
            }
        }
    };
}

permissions! {
    AlertRead => "Alert.Read.All", "Read all alerts and investigations";
    AlertReadWrite => "Alert.ReadWrite.All", "Read and write all alerts, start investigations";
    MachineRead => "Machine.Read.All", "Read all machine profiles and machine actions";
    MachineReadWrite => "Machine.ReadWrite.All", "Read and write machine information (tags, device value)";
    MachineIsolate => "Machine.Isolate", "Isolate and release machines";
    MachineRestrictExecution => "Machine.RestrictExecution", "Restrict and unrestrict code execution";
    MachineScan => "Machine.Scan", "Run antivirus scans";
    MachineCollectForensics => "Machine.CollectForensics", "Collect investigation packages";
    MachineStopAndQuarantine => "Machine.StopAndQuarantine", "Stop and quarantine files";
    MachineOffboard => "Machine.Offboard", "Offboard machines";
    MachineLiveResponse => "Machine.LiveResponse", "Run live response on a machine";
    LibraryManage => "Library.Manage", "Manage the live-response library";
    TiReadWrite => "Ti.ReadWrite", "Read and write the indicators the app created";
    TiReadWriteAll => "Ti.ReadWrite.All", "Read and write all indicators";
    TiReadAll => "Ti.Read.All", "Read all indicators";
    AdvancedQueryRead => "AdvancedQuery.Read.All", "Run advanced queries";
    AdvancedHuntingRead => "AdvancedHunting.Read.All", "Run advanced hunting queries (Defender XDR API)";
    IncidentRead => "Incident.Read.All", "Read all incidents";
    IncidentReadWrite => "Incident.ReadWrite.All", "Read and write all incidents";
    VulnerabilityRead => "Vulnerability.Read.All", "Read vulnerability information";
    SoftwareRead => "Software.Read.All", "Read software inventory";
    SecurityRecommendationRead => "SecurityRecommendation.Read.All", "Read security recommendations";
    RemediationTasksRead => "RemediationTasks.Read.All", "Read remediation activities";
    ScoreRead => "Score.Read.All", "Read exposure and secure scores";
    SecurityConfigurationRead => "SecurityConfiguration.Read.All", "Read security configuration and the audit log";
    SecurityConfigurationReadWrite => "SecurityConfiguration.ReadWrite.All", "Read and write security configuration";
    SecurityBaselinesAssessmentRead => "SecurityBaselinesAssessment.Read.All", "Read security baseline assessments";
    FileRead => "File.Read.All", "Read file profiles";
    IpRead => "Ip.Read.All", "Read IP address profiles";
    UrlRead => "Url.Read.All" | "URL.Read.All", "Read URL and domain profiles";
    UserRead => "User.Read.All", "Read user profiles";
    EventWrite => "Event.Write", "Write events";
    CustomDetectionRead => "CustomDetection.Read.All", "Read custom detection rules and their runs (Defender XDR)";
    CustomDetectionReadWrite => "CustomDetection.ReadWrite.All", "Create, change, run and delete custom detection rules (Defender XDR)";
    IntegrationConfigurationReadWrite => "IntegrationConfiguration.ReadWrite", "Read and write integration configuration";
}

/// A role name that is not an MDE application permission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an MDE application permission")]
pub struct UnknownPermission(pub String);

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses a comma-separated role list such as `Alert.ReadWrite.All,Machine.Isolate`.
/// `all` grants every permission.
pub fn parse_list(list: &str) -> Result<Vec<Permission>, UnknownPermission> {
    if list.trim().eq_ignore_ascii_case("all") {
        return Ok(Permission::ALL.to_vec());
    }
    let mut out: Vec<Permission> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(p.name().parse::<Permission>().unwrap(), *p);
        }
        assert_eq!(
            "URL.Read.All".parse::<Permission>().unwrap(),
            Permission::UrlRead
        );
        assert!("Alert.Read".parse::<Permission>().is_err());
    }

    #[test]
    fn list_parsing() {
        let l = parse_list("Machine.Isolate, Alert.Read.All,Machine.Isolate").unwrap();
        assert_eq!(l, vec![Permission::AlertRead, Permission::MachineIsolate]);
        assert_eq!(parse_list("all").unwrap().len(), Permission::ALL.len());
        assert_eq!(parse_list("Alert.Read.All,Nope").unwrap_err().0, "Nope");
    }
}
