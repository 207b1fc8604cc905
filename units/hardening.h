// The systemd hardening every sandboxed unit of hostd's shares (a tenant's PostgreSQL, backups
// and branch recoveries; a repository host's pgBackRest servers and backups): no devices, /tmp,
// homes, kernel knobs, capabilities, namespaces, SUID, W^X memory, a system-service syscall set
// without the privileged ones. What each unit may see and write is its own (its caller's).
// Header-only text: the unit renderers stay pure.
#pragma once

namespace hostd::units {

inline constexpr const char* kHardening =
    "PrivateTmp=yes\n"
    "PrivateDevices=yes\n"
    "ProtectHome=yes\n"
    "ProtectKernelTunables=yes\n"
    "ProtectKernelModules=yes\n"
    "ProtectKernelLogs=yes\n"
    "ProtectControlGroups=yes\n"
    "ProtectClock=yes\n"
    "ProtectHostname=yes\n"
    "ProtectProc=invisible\n"
    "ProcSubset=pid\n"
    "NoNewPrivileges=yes\n"
    "CapabilityBoundingSet=\n"
    "AmbientCapabilities=\n"
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n"
    "RestrictNamespaces=yes\n"
    "RestrictRealtime=yes\n"
    "RestrictSUIDSGID=yes\n"
    "LockPersonality=yes\n"
    "MemoryDenyWriteExecute=yes\n"
    "KeyringMode=private\n"
    "SystemCallArchitectures=native\n"
    "SystemCallFilter=@system-service\n"
    "SystemCallFilter=~@privileged @resources @obsolete\n"
    "SystemCallErrorNumber=EPERM\n";

}  // namespace hostd::units
