// swift-tools-version:6.0
import PackageDescription

// brig: an OCI runtime in Swift. Targets are leaf-first; see DEVELOPERS.md for the map.
// The `brig` binary is linked fully static in release builds (~0.8 ms start); debug builds
// link dynamically so that `swift test` stays quick to link.
let staticRelease: [LinkerSetting] = [
    .unsafeFlags([
        "-static-executable",
        "-Xlinker", "-l_FoundationCShims",
        "-Xlinker", "-l_FoundationCollections",
        "-Xlinker", "-lswiftSynchronization",
    ], .when(configuration: .release)),
]

let package = Package(
    name: "brig",
    products: [
        .executable(name: "brig", targets: ["brig"]),
        .executable(name: "brig-agent", targets: ["brig-agent"]),
    ],
    targets: [
        // Leaves
        .target(name: "CBrigShim"),
        .target(name: "BrigOCI"),
        // Linux primitives (the only place errno becomes an error)
        .target(name: "BrigLinux", dependencies: ["CBrigShim"]),
        .target(name: "CBrigCgroupShim"),
        .target(name: "BrigCgroups", dependencies: ["BrigOCI", "BrigLinux", "CBrigCgroupShim"]),
        // Core: state store, lifecycle, Backend protocol, hooks
        .target(name: "BrigCore", dependencies: ["BrigOCI", "BrigLinux", "BrigCgroups"]),
        // Namespaces backend
        .target(name: "BrigNamespaces", dependencies: ["BrigCore", "BrigOCI", "BrigLinux", "BrigCgroups", "BrigSeccomp", "CBrigShim"]),
        // CLI: one file per verb
        .target(name: "BrigCLI", dependencies: ["BrigCore", "BrigOCI", "BrigLinux", "BrigNamespaces", "BrigCgroups", "BrigSeccomp", "BrigVMM", "BrigMicroVM"]),
        .executableTarget(name: "brig", dependencies: ["BrigCLI"], linkerSettings: staticRelease),

        .testTarget(name: "BrigOCITests", dependencies: ["BrigOCI"]),
        .testTarget(name: "BrigLinuxTests", dependencies: ["BrigLinux"]),
        .testTarget(name: "BrigCgroupsTests", dependencies: ["BrigCgroups"]),
        .testTarget(name: "BrigCoreTests", dependencies: ["BrigCore", "BrigCgroups"]),
        .testTarget(name: "BrigNamespacesTests", dependencies: ["BrigNamespaces"]),
        .testTarget(name: "BrigCLITests", dependencies: ["BrigCLI", "BrigCgroups", "BrigLinux", "BrigNamespaces", "BrigOCI", "CBrigSeccompShim", "CBrigShim"]),

        // VMM (issue 7), leaf-first: KVM shim, guest memory, loader, devices, KVM layer, VMM.
        .target(name: "CBrigKVM"),
        .target(name: "BrigGuestMemory"),
        .target(name: "BrigBoot", dependencies: ["BrigGuestMemory"]),
        .target(name: "BrigDevices", dependencies: ["BrigGuestMemory"]),
        .target(name: "BrigKVM", dependencies: ["CBrigKVM"]),
        .target(name: "BrigVMM", dependencies: ["BrigGuestMemory", "BrigBoot", "BrigDevices", "BrigKVM", "CBrigKVM", "BrigLinux", "BrigOCI", "BrigSeccomp", "CBrigSeccompShim", "CBrigShim"]),
        .executableTarget(name: "brig-vmm", dependencies: ["BrigVMM"]),
        .testTarget(name: "BrigGuestMemoryTests", dependencies: ["BrigGuestMemory"]),
        .testTarget(name: "BrigBootTests", dependencies: ["BrigBoot", "BrigGuestMemory"]),
        .testTarget(name: "BrigDevicesTests", dependencies: ["BrigDevices", "BrigGuestMemory"]),
        .testTarget(name: "BrigVMMTests", dependencies: ["BrigVMM", "BrigKVM", "BrigBoot", "BrigDevices", "BrigGuestMemory", "BrigLinux"]),
    ],
    swiftLanguageModes: [.v5]
)

// The microvm backend (issue 8): a VM per container, brig-agent inside, reached over vsock.
package.targets += [
    .target(name: "BrigMicroVM", dependencies: ["BrigCore", "BrigOCI", "BrigLinux", "BrigVMM", "BrigAgentProtocol", "CBrigShim"]),
    .testTarget(name: "BrigMicroVMTests", dependencies: ["BrigMicroVM", "BrigAgentProtocol", "BrigCore", "BrigOCI", "BrigLinux"]),
]

// Seccomp: libseccomp (linked statically in release via Debian's libseccomp.a), the filter library,
// and a probe executable that the kernel tests spawn to load a profile and try one syscall.
package.targets += [
    .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
    .target(name: "CBrigSeccompShim"),
    .target(name: "BrigSeccomp", dependencies: ["BrigOCI", "BrigLinux", "CSeccomp", "CBrigSeccompShim"]),
    .executableTarget(name: "brig-seccomp-probe", dependencies: ["BrigSeccomp", "BrigOCI", "CBrigSeccompShim"],
                      linkerSettings: staticRelease),
    .testTarget(name: "BrigSeccompTests", dependencies: ["BrigSeccomp", "BrigOCI", "BrigLinux", "CBrigSeccompShim"]),
]

// brig-agent: PID 1 of a microvm guest. The protocol + host client, the server (containers run
// with NamespacesBackend), and its executable (linked static in release, like brig).
package.targets += [
    .target(name: "BrigAgentProtocol", dependencies: ["BrigOCI", "BrigLinux", "BrigCore", "BrigCgroups"]),
    .target(name: "BrigAgent", dependencies: ["BrigAgentProtocol", "BrigNamespaces", "BrigCore", "BrigOCI", "BrigLinux", "BrigCgroups", "CBrigShim"]),
    .executableTarget(name: "brig-agent", dependencies: ["BrigAgent", "BrigNamespaces", "BrigAgentGuest"], linkerSettings: staticRelease),
    .testTarget(name: "BrigAgentTests", dependencies: ["BrigAgentProtocol", "BrigAgent", "BrigOCI", "BrigLinux", "CBrigShim"]),
]

// brig-agent as a guest's PID 1: /proc before the Swift runtime (C constructor), bring-up,
// transports (vsock, serial). The QEMU test boots a real kernel with it (docs/agent-guest.md).
package.targets += [
    .target(name: "CBrigAgentInit"),
    .target(name: "BrigAgentGuest", dependencies: ["BrigLinux", "CBrigAgentInit"]),
    .testTarget(name: "BrigAgentGuestTests", dependencies: ["BrigAgentGuest", "BrigAgentProtocol", "BrigOCI", "BrigLinux"]),
]
