//! What a host runs besides SSH and containers: Tailscale, fail2ban, pull-mode upgrades, binary
//! caches and the kernel command line. Each is judged from the resolved view, so a lint sees the
//! same tailnet, fail2ban settings, flake reference and caches the renderer writes.

use model::Path;

use crate::codes::Code;
use crate::context::{Context, host_path};
use crate::diagnostic::Diagnostic;
use crate::rules::{Family, rules};

/// The services family.
pub(crate) const FAMILY: Family = Family {
    name: "services",
    rules: rules![
        tailnet_deploy,
        tailscale_auth_key,
        tailscale_tags,
        tailscale_ssh,
        fail2ban_ignores_everyone,
        auto_upgrade_target,
        auto_upgrade_reboot,
        substituters,
        kernel_params,
    ],
};

/// A deploy address inside the tailnet is reachable only while tailscaled runs on the host.
fn tailnet_deploy(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for view in &ctx.hosts {
        if !view.deploy_via_tailnet() || view.tailscale.is_some() {
            continue;
        }
        let name = view.name;
        let turned_off = view.host.tailscale.as_ref().is_some_and(|t| !t.enable);
        let path = if turned_off {
            host_path(name).key("tailscale").key("enable")
        } else {
            host_path(name).key("address")
        };
        out.push(
            ctx.at_value(
                Code::TailnetWithoutTailscale,
                path,
                format!(
                    "host `{name}` is deployed to {}, a Tailscale address, but {}: after the switch nothing answers there",
                    view.deploy.address,
                    if turned_off { "its Tailscale is turned off" } else { "it does not run Tailscale" }
                ),
            )
            .help(format!(
                "add `[hosts.{name}.tailscale]` with `auth_key_secret` (the host joins the tailnet at boot), or deploy to its LAN address"
            )),
        );
    }
    out
}

/// The auth key's secret name holding the key itself: `tskey-…` is what the admin console shows,
/// and it is also a valid secret name.
fn tailscale_auth_key(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let Some(secret) = host
            .tailscale
            .as_ref()
            .and_then(|t| t.auth_key_secret.as_ref())
        else {
            continue;
        };
        if secret.as_str().starts_with("tskey-") {
            out.push(
                ctx.at_value(
                    Code::PlaintextAuthKey,
                    host_path(name).key("tailscale").key("auth_key_secret"),
                    format!("host `{name}`: `auth_key_secret` holds what looks like the auth key itself, not the name of a secret"),
                )
                .help("revoke this key in the admin console, store a new one with `pifleet secrets set tailscale-key`, and set `auth_key_secret = \"tailscale-key\"`"),
            );
        }
    }
    out
}

/// Tags are an `up` flag only, and NixOS runs `tailscale up` only with an auth key.
fn tailscale_tags(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for view in &ctx.hosts {
        let Some(ts) = &view.tailscale else {
            continue;
        };
        if ts.advertise_tags.is_empty() || ts.auth_key_secret.is_some() {
            continue;
        }
        let name = view.name;
        out.push(
            ctx.at_value(
                Code::TailscaleTagsNeedAuthKey,
                host_path(name).key("tailscale").key("advertise_tags"),
                format!(
                    "host `{name}` advertises Tailscale tags but has no `auth_key_secret`: tags are a `tailscale up` flag, which NixOS runs only with an auth key, so these are never used"
                ),
            )
            .help(format!(
                "add `auth_key_secret` to `[hosts.{name}.tailscale]` (store the key with `pifleet secrets set tailscale-key`), or drop `advertise_tags` and tag the node in the admin console"
            )),
        );
    }
    out
}

/// Tailscale SSH answers port 22 on the tailnet addresses inside tailscaled: sshd never sees
/// those connections, so the inventory's SSH policy (keys, allowed users, root login) does not
/// hold for them; the tailnet policy file's `ssh` rules do.
fn tailscale_ssh(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for view in &ctx.hosts {
        let Some(ts) = &view.tailscale else {
            continue;
        };
        if ts.ssh != Some(true) {
            continue;
        }
        let name = view.name;
        let deploy = if view.deploy_via_tailnet() && view.deploy.port == 22 {
            format!(
                "; deploy, which connects to {} on port 22, logs in through them too",
                view.deploy.address
            )
        } else {
            String::new()
        };
        out.push(
            ctx.at_value(
                Code::TailscaleSsh,
                host_path(name).key("tailscale").key("ssh"),
                format!(
                    "host `{name}` runs Tailscale SSH: SSH over the tailnet goes to tailscaled, not sshd, so the inventory's SSH policy (keys, `allow_users`, root login) does not apply there, and the tailnet policy file's `ssh` rules decide who logs in as whom{deploy}"
                ),
            )
            .help("leave `ssh` out (or `false`) and reach sshd over the tailnet with `trust_interface = true`, or `allow` this code with the reason if the policy file's rules are meant to decide"),
        );
    }
    out
}

/// An `ignore_ip` entry with prefix length 0 covers every address of its family: fail2ban then
/// bans no one (of that family), while the inventory still says it runs.
fn fail2ban_ignores_everyone(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for view in &ctx.hosts {
        let Some(fail2ban) = view.fail2ban else {
            continue;
        };
        let name = view.name;
        for (i, entry) in fail2ban.ignore_ip.iter().enumerate() {
            if !entry.covers_everything() {
                continue;
            }
            let family = if entry.address().is_ipv6() {
                "IPv6"
            } else {
                "IPv4"
            };
            out.push(
                ctx.at_value(
                    Code::Fail2banIgnoresEveryone,
                    host_path(name).key("fail2ban").key("ignore_ip").index(i),
                    format!(
                        "host `{name}`: fail2ban ignores `{entry}`, every {family} address, so it never bans an {family} client"
                    ),
                )
                .help("list only the networks you trust, e.g. your LAN (\"192.168.1.0/24\"); to stop banning, set `enable = false`"),
            );
        }
    }
    out
}

/// A host pulling another host's configuration would turn into that host at the next timer.
fn auto_upgrade_target(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for view in &ctx.hosts {
        let Some(upgrade) = &view.auto_upgrade else {
            continue;
        };
        let Some(other) = upgrade.other_host else {
            continue;
        };
        let name = view.name;
        out.push(
            ctx.at_value(
                Code::AutoUpgradeOtherHost,
                host_path(name).key("auto_upgrade").key("flake"),
                format!(
                    "host `{name}` would upgrade itself to the configuration `{other}` (`{}`): it would take that host's name, address and keys at the next timer",
                    upgrade.settings.flake
                ),
            )
            .help(format!(
                "write the flake without `#…` (pifleet adds `#{name}`), or with `#{name}`"
            )),
        );
    }
    out
}

/// An unattended reboot into a generation that does not come up leaves the host down until someone
/// reaches its console. `system.autoUpgrade` runs `nixos-rebuild boot` and reboots into the new
/// default: unlike `pifleet deploy`, nothing confirms it and nothing boots it once only (U-Boot's
/// extlinux menu, on every Pi, cannot; GRUB and systemd-boot could, but the upgrade does not ask
/// them). So every host that allows it is warned.
fn auto_upgrade_reboot(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for view in &ctx.hosts {
        let Some(upgrade) = &view.auto_upgrade else {
            continue;
        };
        if !upgrade.settings.allow_reboot {
            continue;
        }
        let name = view.name;
        out.push(
            ctx.at_value(
                Code::RebootWithoutFallback,
                host_path(name).key("auto_upgrade").key("allow_reboot"),
                format!(
                    "host `{name}` ({}) reboots into each upgrade by itself, and its boot loader has no one-shot boot: a generation that does not come up stays the default until someone picks an older one at the console",
                    view.host.board.as_str()
                ),
            )
            .help("leave `allow_reboot` off (kernel changes wait for a reboot you watch), or `allow` this with the reason if the host is easy to reach"),
        );
    }
    out
}

/// Caches: plain http lets anyone on the path swap what is fetched (the signatures still hold,
/// but the narinfo and its timing leak, and a cache without a key is trusted for nothing); a cache
/// without a key gives no paths with `require-sigs` on, and any path with it off.
fn substituters(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let nix = &ctx.fleet.fleet.nix;
    let base = Path::root().key("fleet").key("nix");
    for (i, sub) in nix.substituters.iter().enumerate() {
        let path = base.key("substituters").index(i);
        if sub.scheme() == "http" {
            out.push(
                ctx.at_value(
                    Code::InsecureSubstituter,
                    path.clone(),
                    format!("binary cache `{sub}` is fetched over plain http: anyone on the way sees what every host downloads and can serve old, signed paths"),
                )
                .help(format!("use https://{}", sub.as_str().trim_start_matches("http://"))),
            );
        }
        if nix.trusted_public_keys.is_empty() && !sub.is_nixos_cache() {
            out.push(
                ctx.at_value(
                    Code::SubstituterWithoutKey,
                    path,
                    format!("binary cache `{sub}` has no key in `fleet.nix.trusted_public_keys`: Nix refuses its unsigned paths, so it serves nothing (or, with signature checks off, anything)"),
                )
                .help("add the key the cache publishes (`name:base64`) to `trusted_public_keys`"),
            );
        }
    }
    out
}

/// Settings of the Pi firmware's config.txt, which the firmware reads before the kernel starts;
/// on the kernel command line they do nothing. From the Raspberry Pi config.txt documentation.
const CONFIG_TXT_KEYS: &[&str] = &[
    "arm_64bit",
    "arm_boost",
    "arm_freq",
    "arm_freq_min",
    "armstub",
    "auto_initramfs",
    "avoid_warnings",
    "boot_delay",
    "boot_uart",
    "camera_auto_detect",
    "config_hdmi_boost",
    "core_freq",
    "core_freq_min",
    "device_tree",
    "device_tree_address",
    "disable_camera_led",
    "disable_fw_kms_setup",
    "disable_overscan",
    "disable_splash",
    "display_auto_detect",
    "display_hdmi_rotate",
    "display_lcd_rotate",
    "display_rotate",
    "dtdebug",
    "dtoverlay",
    "dtparam",
    "enable_gic",
    "enable_jtag_gpio",
    "enable_tvout",
    "enable_uart",
    "force_turbo",
    "framebuffer_depth",
    "framebuffer_height",
    "framebuffer_width",
    "gpu_freq",
    "gpu_mem",
    "gpu_mem_1024",
    "gpu_mem_256",
    "gpu_mem_512",
    "hdmi_blanking",
    "hdmi_boost",
    "hdmi_cvt",
    "hdmi_drive",
    "hdmi_enable_4kp60",
    "hdmi_force_hotplug",
    "hdmi_group",
    "hdmi_ignore_edid",
    "hdmi_mode",
    "hdmi_safe",
    "initial_turbo",
    "initramfs",
    "kernel",
    "lcd_rotate",
    "max_framebuffers",
    "otg_mode",
    "over_voltage",
    "over_voltage_min",
    "overscan_bottom",
    "overscan_left",
    "overscan_right",
    "overscan_top",
    "sdram_freq",
    "start_file",
    "start_x",
    "temp_limit",
    "temp_soft_limit",
    "total_mem",
    "uart_2ndstage",
    "upstream_kernel",
    "v3d_freq",
];

/// Whether the kernel parameter is a config.txt setting (`gpu_mem=128`, `start_x`) or section
/// header (`[pi4]`).
fn is_config_txt(param: &str) -> bool {
    let key = param.split_once('=').map_or(param, |(k, _)| k);
    param.starts_with('[') || CONFIG_TXT_KEYS.contains(&key)
}

fn kernel_params(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        for (i, param) in host.kernel_params.iter().enumerate() {
            if is_config_txt(param.as_str()) {
                out.push(
                    ctx.at_value(
                        Code::ConfigTxtKernelParam,
                        host_path(name).key("kernel_params").index(i),
                        format!("`{param}` is a setting of the Pi firmware's config.txt, read before the kernel starts: on the kernel command line it does nothing"),
                    )
                    .help("remove it from `kernel_params`; config.txt settings go into the firmware partition (a hand-written module setting `sdImage.populateFirmwareCommands`, or nixos-hardware's `hardware.raspberry-pi.configtxt`)"),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_txt_keys_are_told_from_kernel_parameters() {
        for fw in [
            "gpu_mem=128",
            "dtoverlay=vc4-kms-v3d",
            "start_x",
            "[pi4]",
            "arm_64bit=1",
        ] {
            assert!(is_config_txt(fw), "{fw}");
        }
        for kernel in [
            "console=ttyS0,115200",
            "cma=256M",
            "video=HDMI-A-1:1920x1080",
            "quiet",
            "cgroup_enable=memory",
            "dwc_otg.lpm_enable=0",
        ] {
            assert!(!is_config_txt(kernel), "{kernel}");
        }
    }
}
