import BrigCore
import BrigOCI
import Testing

@Suite struct SelectionTests {
    func spec(annotation: String? = nil, vm: Bool = false) -> Spec {
        var s = Spec()
        if let annotation { s.annotations = [BackendSelection.annotation: annotation] }
        if vm { s.vm = VM(hypervisor: nil, kernel: .init(path: "/k", parameters: nil, initrd: nil), image: nil) }
        return s
    }

    @Test func defaultIsNamespaces() throws {
        #expect(try BackendSelection.select(spec: spec(), flag: nil) == .namespaces)
    }

    @Test func vmObjectSelectsMicrovm() throws {
        #expect(try BackendSelection.select(spec: spec(vm: true), flag: "namespaces") == .microvm)
    }

    @Test func annotationBeatsFlag() throws {
        #expect(try BackendSelection.select(spec: spec(annotation: "microvm"), flag: "namespaces") == .microvm)
        #expect(try BackendSelection.select(spec: spec(annotation: "namespaces"), flag: "microvm") == .namespaces)
        #expect(try BackendSelection.select(spec: spec(), flag: "microvm") == .microvm)
    }

    @Test func badValuesNameTheirSource() {
        #expect { try BackendSelection.select(spec: spec(annotation: "xen"), flag: nil) } throws: {
            ($0 as? RuntimeError)?.message.contains("annotations[\"run.oci.brig.backend\"]") == true
        }
        #expect { try BackendSelection.select(spec: spec(), flag: "xen") } throws: {
            ($0 as? RuntimeError)?.message.contains("--backend") == true
        }
        #expect { try BackendSelection.select(spec: spec(annotation: "namespaces", vm: true), flag: nil) } throws: {
            ($0 as? RuntimeError)?.message.contains("vm object") == true
        }
    }
}
