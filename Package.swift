// swift-tools-version:6.0
import PackageDescription

// brig: an OCI runtime in Swift. One target per concern, grouped by layer and listed leaf-first;
// the folders under Sources/ are the layers (`path:`), Tests/ mirrors them. DEVELOPERS.md's map
// is generated from this file (scripts/devmap).
//
// The executables are linked fully static in release builds (~0.8 ms start); debug builds link
// dynamically so that `swift test` stays quick to link.
let staticRelease: [LinkerSetting] = [
    .unsafeFlags([
        "-static-executable",
        "-Xlinker", "-l_FoundationCShims",
        "-Xlinker", "-l_FoundationCollections",
        "-Xlinker", "-lswiftSynchronization",
    ], .when(configuration: .release)),
]

/// A library target at Sources/<path>.
func lib(_ name: String, _ path: String, _ deps: [Target.Dependency] = []) -> Target {
    .target(name: name, dependencies: deps, path: "Sources/" + path)
}
/// A test target at Tests/<path>.
func test(_ name: String, _ path: String, _ deps: [Target.Dependency]) -> Target {
    .testTarget(name: name, dependencies: deps, path: "Tests/" + path)
}
/// An executable at Sources/Executables/<name>.
func exe(_ name: String, _ deps: [Target.Dependency], static linked: Bool = false) -> Target {
    .executableTarget(name: name, dependencies: deps, path: "Sources/Executables/" + name,
                      linkerSettings: linked ? staticRelease : [])
}

let package = Package(
    name: "brig",
    products: [
        .executable(name: "brig", targets: ["brig"]),
        .executable(name: "brig-agent", targets: ["brig-agent"]),
    ],
    targets: [
        // C: shims over syscalls Swift cannot call directly, and system libraries.
        lib("CBrigShim", "C/CBrigShim"),
        lib("CBrigCgroupShim", "C/CBrigCgroupShim"),
        lib("CBrigSeccompShim", "C/CBrigSeccompShim"),
        lib("CBrigKVM", "C/CBrigKVM"),
        lib("CBrigAgentInit", "C/CBrigAgentInit"),
        .systemLibrary(name: "CSeccomp", path: "Sources/C/CSeccomp", pkgConfig: "libseccomp",
                       providers: [.apt(["libseccomp-dev"])]),

        // JSON: a strict JSON parser and writer with Codable conformances, free of Foundation (a
        // leaf: config.json and state.json are coded with it on the container path).
        lib("BrigJSON", "JSON"),

        // OCI: the runtime-spec types, errors naming the field, validation (a leaf, and free of
        // Foundation: the VMM links it).
        lib("BrigOCI", "OCI"),

        // Platform: Linux primitives (the only place errno becomes an error), cgroups, seccomp.
        lib("BrigLinux", "Platform/Linux", ["CBrigShim"]),
        lib("BrigCgroups", "Platform/Cgroups", ["BrigOCI", "BrigLinux", "CBrigCgroupShim"]),
        lib("BrigSeccomp", "Platform/Seccomp", ["BrigOCI", "BrigLinux", "CSeccomp", "CBrigSeccompShim"]),

        // Runtime: the core (config.json and state JSON, state store, lifecycle, Backend protocol, hooks).
        lib("BrigCore", "Runtime/Core", ["BrigJSON", "BrigOCI", "BrigLinux"]),

        // Backends behind BrigCore's Backend protocol.
        lib("BrigNamespaces", "Backends/Namespaces",
            ["BrigCore", "BrigOCI", "BrigLinux", "BrigCgroups", "BrigSeccomp", "CBrigShim"]),
        lib("BrigMicroVM", "Backends/MicroVM",
            ["BrigCore", "BrigOCI", "BrigLinux", "BrigCgroups", "BrigNamespaces", "BrigVMM", "BrigAgentProtocol", "CBrigShim"]),

        // VMM, leaf-first: guest memory, loader, devices (which never see KVM), KVM, the machine.
        lib("BrigGuestMemory", "VMM/GuestMemory", ["BrigLinux"]),
        lib("BrigBoot", "VMM/Boot", ["BrigGuestMemory"]),
        lib("BrigDevices", "VMM/Devices", ["BrigGuestMemory", "BrigLinux", "CBrigShim"]),
        lib("BrigKVM", "VMM/KVM", ["CBrigKVM", "BrigLinux"]),
        lib("BrigVMM", "VMM/Machine",
            ["BrigGuestMemory", "BrigBoot", "BrigDevices", "BrigKVM", "CBrigKVM", "BrigLinux", "BrigOCI",
             "BrigSeccomp", "CBrigSeccompShim", "CBrigShim"]),

        // Agent: the wire protocol + host client, the server (containers run with
        // NamespacesBackend), and the guest's PID 1 bring-up (/proc before the Swift runtime).
        lib("BrigAgentProtocol", "Agent/Protocol", ["BrigOCI", "BrigLinux"]),
        lib("BrigAgent", "Agent/Server",
            ["BrigAgentProtocol", "BrigNamespaces", "BrigCore", "BrigOCI", "BrigLinux", "CBrigShim"]),
        lib("BrigAgentGuest", "Agent/Guest", ["BrigLinux", "CBrigAgentInit"]),

        // CLI: one file per verb.
        lib("BrigCLI", "CLI",
            ["BrigCore", "BrigOCI", "BrigLinux", "BrigNamespaces", "BrigCgroups", "BrigSeccomp", "BrigVMM",
             "BrigMicroVM"]),

        // Executables.
        exe("brig", ["BrigCLI"], static: true),
        exe("brig-agent", ["BrigAgent", "BrigNamespaces", "BrigAgentGuest"], static: true),
        exe("brig-vmm", ["BrigVMM"], static: true),
        exe("brig-seccomp-probe", ["BrigSeccomp", "BrigOCI", "BrigCore", "CBrigSeccompShim"], static: true),

        // Tests mirror Sources/.
        test("BrigJSONTests", "JSON", ["BrigJSON"]),
        test("BrigLinuxTests", "Platform/Linux", ["BrigLinux"]),
        test("BrigCgroupsTests", "Platform/Cgroups", ["BrigCgroups"]),
        test("BrigSeccompTests", "Platform/Seccomp", ["BrigSeccomp", "BrigOCI", "BrigCore", "BrigLinux", "CBrigSeccompShim"]),
        test("BrigOCITests", "OCI", ["BrigOCI", "BrigCore"]),
        test("BrigCoreTests", "Runtime/Core", ["BrigCore", "BrigOCI", "BrigLinux"]),
        test("BrigNamespacesTests", "Backends/Namespaces", ["BrigNamespaces", "BrigCore", "BrigCgroups"]),
        test("BrigMicroVMTests", "Backends/MicroVM", ["BrigMicroVM", "BrigAgentProtocol", "BrigCore", "BrigOCI", "BrigLinux", "BrigCgroups"]),
        test("BrigGuestMemoryTests", "VMM/GuestMemory", ["BrigGuestMemory"]),
        test("BrigBootTests", "VMM/Boot", ["BrigBoot", "BrigGuestMemory"]),
        test("BrigDevicesTests", "VMM/Devices", ["BrigDevices", "BrigGuestMemory"]),
        test("BrigVMMTests", "VMM/Machine", ["BrigVMM", "BrigKVM", "BrigBoot", "BrigDevices", "BrigGuestMemory", "BrigLinux"]),
        test("BrigAgentTests", "Agent/Server", ["BrigAgentProtocol", "BrigAgent", "BrigCore", "BrigOCI", "BrigLinux", "CBrigShim"]),
        test("BrigAgentGuestTests", "Agent/Guest", ["BrigAgentGuest", "BrigAgentProtocol", "BrigOCI", "BrigLinux"]),
        test("BrigCLITests", "CLI",
             ["BrigCLI", "BrigCgroups", "BrigLinux", "BrigNamespaces", "BrigOCI", "CBrigSeccompShim", "CBrigShim"]),
    ],
    swiftLanguageModes: [.v5]
)
