//! Periodic device state: one DeviceInfo row and one DeviceNetworkInfo row per adapter, every
//! hour at a device-specific minute (as Defender's full reports are hourly, not aligned).

use crate::engine::{Ev, Out, World};
use crate::fleet::Os;
use crate::row::{C, T};
use crate::time::{DOTNET_EPOCH_TICKS, HOUR, TICK};
use std::io;

pub fn init(w: &mut World<'_>, dev: usize, start: i64) {
    let offset = w.devs[dev].ctx.snapshot_offset;
    let mut first = start.div_euclid(HOUR) * HOUR + offset;
    if first < start {
        first += HOUR;
    }
    w.queue.push(first, dev, Ev::Snapshot);
}

/// Snapshot tables carry 18-digit ReportIds shaped like .NET ticks of the report time.
fn snapshot_report_id(t: i64, dev: usize, k: i64) -> i64 {
    t / TICK + DOTNET_EPOCH_TICKS + (dev as i64 % 1000) * 10 + k
}

pub fn emit(w: &mut World<'_>, out: &mut Out<'_>, dev: usize, t: i64) -> io::Result<()> {
    w.queue.push(t + HOUR, dev, Ev::Snapshot);
    let d = &w.devs[dev];
    let fd = &w.fleet.devices()[dev];
    let (ctx, st) = (&d.ctx, &d.st);
    let plat = &fd.platform;
    let info = &ctx.info;
    let mut r = out.start(T::Info);
    r.t(C::Timestamp, t);
    r.s(C::DeviceId, &ctx.id);
    r.s(C::DeviceName, &ctx.name);
    r.s(C::ClientVersion, info.client_version);
    r.s(C::PublicIP, &ctx.public_ip);
    r.s(C::OSArchitecture, "64-bit");
    r.s(C::OSPlatform, plat.os_platform);
    if let Some(b) = plat.os_build {
        r.l(C::OSBuild, b);
    }
    let windows = ctx.os == Os::Windows;
    r.b(C::IsAzureADJoined, windows || ctx.os == Os::MacOs);
    if windows {
        r.s(C::JoinType, "Hybrid Azure AD Join");
    } else if ctx.os == Os::MacOs {
        r.s(C::JoinType, "AAD Registered");
    }
    if ctx.os != Os::Linux {
        r.s(C::AadDeviceId, &info.aad_device_id);
    }
    r.s(
        C::LoggedOnUsers,
        if st.session.is_some() {
            &info.logged_on
        } else {
            &info.nobody
        },
    );
    r.s(C::OSVersion, plat.os_version);
    r.s(C::MachineGroup, &fd.machine_group);
    r.l(C::ReportId, snapshot_report_id(t, dev, 0));
    r.s(C::OnboardingStatus, "Onboarded");
    r.s(C::AdditionalFields, &info.additional);
    r.s(C::DeviceCategory, "Endpoint");
    r.s(C::DeviceType, info.device_type);
    r.s(C::Model, plat.model);
    r.s(C::Vendor, plat.vendor);
    r.s(C::OSDistribution, plat.os_distribution);
    r.s(C::OSVersionInfo, plat.os_version_info);
    r.b(C::IsInternetFacing, fd.internet_facing);
    r.s(C::SensorHealthState, "Active");
    r.b(C::IsExcluded, false);
    r.s(
        C::ExposureLevel,
        if fd.internet_facing {
            "High"
        } else if fd.role.is_server() {
            "Medium"
        } else {
            "Low"
        },
    );
    r.s(
        C::AssetValue,
        if fd.role.is_server() || fd.tags.iter().any(|t| t == "VIP") {
            "High"
        } else {
            "Normal"
        },
    );
    r.s(C::DeviceManualTags, &info.manual_tags);
    r.s(C::ConnectivityType, "Streamlined");
    r.s(C::HardwareUuid, &info.hardware_uuid);
    r.b(C::IsTransient, false);
    r.s_opt(C::OsBuildRevision, Some(plat.build_revision));
    r.s(C::Site, &fd.site);
    out.emit(dev, r)?;
    for (k, a) in ctx.adapters.iter().enumerate() {
        let mut r = out.start(T::NetworkInfo);
        r.t(C::Timestamp, t);
        r.s(C::DeviceId, &ctx.id);
        r.s(C::DeviceName, &ctx.name);
        r.s(C::NetworkAdapterName, a.name);
        r.s(C::MacAddress, &a.mac);
        r.s(C::NetworkAdapterType, a.kind);
        r.s(C::NetworkAdapterStatus, "Up");
        r.s(C::TunnelType, a.tunnel);
        r.s(C::ConnectedNetworks, &a.connected);
        r.s(C::DnsAddresses, &a.dns);
        r.s_opt(C::IPv4Dhcp, a.dhcp.as_deref());
        r.s(C::DefaultGateways, &a.gateways);
        r.s(C::IPAddresses, &a.addresses);
        r.l(C::ReportId, snapshot_report_id(t, dev, 1 + k as i64));
        r.s_opt(C::NetworkAdapterVendor, Some(a.vendor));
        r.s(C::OnboardingStatus, "Onboarded");
        r.s_opt(C::NetworkAdapterDnsSuffix, a.suffix.as_deref());
        out.emit(dev, r)?;
    }
    Ok(())
}
