#!/usr/bin/python3
"""A minimal CRI v1 client that walks one pod through its life on a CRI server:
    cri_client.py SOCKET LOG_DIR IMAGE NAME
Compiles cri_min.proto (next to this file) with protoc into a temp dir, then calls
runtime.v1.RuntimeService/ImageService over gRPC on unix:SOCKET. Prints "ok - NAME: STEP" /
"not ok - NAME: STEP: ..." lines and "N passed, M failed"; exits 1 on any failure. A step whose
RPC fails ends the walk (later steps depend on it), but the pod is still stopped and removed.
Needs Debian's python3-grpcio, python3-protobuf and protobuf-compiler."""
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import grpc

here = os.path.dirname(os.path.abspath(__file__))
sock, log_dir, image, name = sys.argv[1:5]

gen = tempfile.mkdtemp(prefix="cri-gen-")
atexit.register(shutil.rmtree, gen, True)
subprocess.run(["protoc", "-I" + here, "--python_out=" + gen, "cri_min.proto"], check=True)
sys.path.insert(0, gen)
import cri_min_pb2 as pb  # noqa: E402

passed = failed = 0


def check(step, expected, actual):
    global passed, failed
    if expected == actual:
        passed += 1
        print(f"ok - {name}: {step}", flush=True)
    else:
        failed += 1
        print(f"not ok - {name}: {step}: expected [{expected}], got [{actual}]", flush=True)


class StepFailed(Exception):
    pass


channel = grpc.insecure_channel("unix:" + sock)


def rpc(service, method, request, timeout=30):
    """Calls /runtime.v1.SERVICE/METHOD; the response type is METHOD + "Response"."""
    response_type = getattr(pb, method + "Response")
    call = channel.unary_unary(f"/runtime.v1.{service}/{method}",
                               request_serializer=type(request).SerializeToString,
                               response_deserializer=response_type.FromString)
    return call(request, timeout=timeout)


def step(label, service, method, request, timeout=30):
    """One named RPC: counts as passed if it returns, else fails and ends the walk."""
    global passed, failed
    try:
        response = rpc(service, method, request, timeout)
    except grpc.RpcError as e:
        failed += 1
        print(f"not ok - {name}: {label}: {e.code().name}: {e.details()}", flush=True)
        raise StepFailed(label)
    passed += 1
    print(f"ok - {name}: {label}", flush=True)
    return response


def runtime(label, method, request, timeout=30):
    return step(label, "RuntimeService", method, request, timeout)


def container_state(cid):
    return rpc("RuntimeService", "ContainerStatus", pb.ContainerStatusRequest(container_id=cid)).status


def wait_for(predicate, seconds=10):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)
    return predicate()


def read_log(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def memory_limit(cid):
    """The memory limit of the container's cgroup (v1 memory.limit_in_bytes or cgroup2
    memory.max), found from its init's /proc/PID/cgroup (the pid is in the verbose status)."""
    info = rpc("RuntimeService", "ContainerStatus",
               pb.ContainerStatusRequest(container_id=cid, verbose=True)).info
    pid = json.loads(info["info"])["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    for _, controllers, path in lines:
        if "memory" in controllers.split(","):
            return read_first_line(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
    unified = "/sys/fs/cgroup" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "/sys/fs/cgroup/unified"
    return read_first_line(unified + dict((c, p) for _, c, p in lines)[""] + "/memory.max")


def read_first_line(path):
    try:
        with open(path) as f:
            return f.readline().strip()
    except OSError as e:
        return str(e)


# Host network (NODE) needs no CNI; each container gets its own PID namespace (kubelet's default).
def namespaces(pid=pb.CONTAINER):
    return pb.NamespaceOption(network=pb.NODE, pid=pid, ipc=pb.POD)


sandbox_config = pb.PodSandboxConfig(
    metadata=pb.PodSandboxMetadata(name="brig-pod", uid=f"uid-{os.getpid()}", namespace="default"),
    log_directory=log_dir,
    labels={"test": "cri.sh"},
    linux=pb.LinuxPodSandboxConfig(
        security_context=pb.LinuxSandboxSecurityContext(namespace_options=namespaces())))


def container_config(cname, script, pid):
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=cname),
        image=pb.ImageSpec(image=image),
        command=["sh", "-c", script],
        envs=[pb.KeyValue(key="GREETING", value="from-cri")],
        log_path=cname + ".log",
        linux=pb.LinuxContainerConfig(
            security_context=pb.LinuxContainerSecurityContext(namespace_options=namespaces(pid))))


def create_and_start(cname, script, pod, pid=pb.CONTAINER):
    cid = runtime(f"CreateContainer {cname}", "CreateContainer", pb.CreateContainerRequest(
        pod_sandbox_id=pod, config=container_config(cname, script, pid),
        sandbox_config=sandbox_config)).container_id
    runtime(f"StartContainer {cname}", "StartContainer", pb.StartContainerRequest(container_id=cid))
    return cid


def stop(cname, cid, timeout):
    start = time.monotonic()
    runtime(f"StopContainer {cname} (timeout {timeout}s)", "StopContainer",
            pb.StopContainerRequest(container_id=cid, timeout=timeout), timeout=timeout + 30)
    return time.monotonic() - start


def walk_containers(pod):
    # c1 prints a marker (log file) and exits 0 on TERM; c2 is `sleep` as PID 1, which ignores
    # TERM, so StopContainer has to fall back to KILL after its timeout.
    c1 = create_and_start("c1", 'echo "marker $GREETING"; trap "exit 0" TERM; '
                          'while true; do sleep 0.1; done', pod)
    status = container_state(c1)
    check("ContainerStatus c1 running", "CONTAINER_RUNNING", pb.ContainerState.Name(status.state))
    log_file = os.path.join(log_dir, "c1.log")
    check("ContainerStatus reports the log path", log_file, status.log_path)
    wait_for(lambda: "marker" in read_log(log_file), 5)
    check("c1.log has the marker as a CRI log line", True,
          any(line.endswith(" stdout F marker from-cri") for line in read_log(log_file).splitlines()))

    out = runtime("ExecSync echo hi", "ExecSync",
                  pb.ExecSyncRequest(container_id=c1, cmd=["echo", "hi"], timeout=10))
    check("ExecSync echo hi: stdout", b"hi\n", out.stdout)
    check("ExecSync echo hi: exit code", 0, out.exit_code)
    out = runtime("ExecSync exit 3", "ExecSync", pb.ExecSyncRequest(
        container_id=c1, cmd=["sh", "-c", "echo oops >&2; exit 3"], timeout=10))
    check("ExecSync exit 3: exit code", 3, out.exit_code)
    check("ExecSync exit 3: stderr", b"oops\n", out.stderr)
    out = runtime("ExecSync sees the container's env", "ExecSync",
                  pb.ExecSyncRequest(container_id=c1, cmd=["sh", "-c", "echo $GREETING"], timeout=10))
    check("ExecSync env", b"from-cri\n", out.stdout)

    # Kubelet's in-place resize: the shim passes the new resources to `RUNTIME update`; the
    # container's memory cgroup (the host's view of the path /proc/self/cgroup shows) gets them.
    check("no 96M memory limit before the update", True, memory_limit(c1) != str(96 << 20))
    runtime("UpdateContainerResources", "UpdateContainerResources", pb.UpdateContainerResourcesRequest(
        container_id=c1, linux=pb.LinuxContainerResources(memory_limit_in_bytes=96 << 20)))
    check("memory limit applied", str(96 << 20), memory_limit(c1))

    listed = runtime("ListContainers", "ListContainers", pb.ListContainersRequest(
        filter=pb.ContainerFilter(pod_sandbox_id=pod))).containers
    check("ListContainers lists c1 running", [("c1", "CONTAINER_RUNNING")],
          [(c.metadata.name, pb.ContainerState.Name(c.state)) for c in listed])

    took = stop("c1", c1, 10)
    status = container_state(c1)
    check("c1 exited on TERM", ("CONTAINER_EXITED", 0), (pb.ContainerState.Name(status.state), status.exit_code))
    check("c1 stopped well before its timeout", True, took < 5)

    c2 = create_and_start("c2", "exec sleep 1000", pod)
    check("ContainerStatus c2 running", "CONTAINER_RUNNING", pb.ContainerState.Name(container_state(c2).state))
    took = stop("c2", c2, 1)
    status = container_state(c2)
    check("c2 killed after the timeout", ("CONTAINER_EXITED", 137),
          (pb.ContainerState.Name(status.state), status.exit_code))
    check("c2 took the timeout (1s) to stop", True, 0.9 <= took < 10)

    # c3 shares the pod's PID namespace (shareProcessNamespace): the pause process is its PID 1,
    # and its `sleep` is no PID 1, so TERM ends it.
    c3 = create_and_start("c3", "exec sleep 1000", pod, pid=pb.POD)
    out = runtime("ExecSync in c3", "ExecSync",
                  pb.ExecSyncRequest(container_id=c3, cmd=["cat", "/proc/1/cmdline"], timeout=10))
    check("c3 sees the pause process as PID 1", True, b"trap" in out.stdout)
    stop("c3", c3, 10)
    status = container_state(c3)
    check("c3 (shared PID namespace) ended by TERM", ("CONTAINER_EXITED", 143),
          (pb.ContainerState.Name(status.state), status.exit_code))

    for cname, cid in (("c1", c1), ("c2", c2), ("c3", c3)):
        runtime(f"RemoveContainer {cname}", "RemoveContainer", pb.RemoveContainerRequest(container_id=cid))
    left = runtime("ListContainers after removal", "ListContainers", pb.ListContainersRequest(
        filter=pb.ContainerFilter(pod_sandbox_id=pod))).containers
    check("no containers left in the pod", [], [c.id for c in left])


def main():
    global failed
    pod = None
    try:
        v = runtime("Version", "Version", pb.VersionRequest(version="v1"))
        check("Version: runtime and API", ("containerd", "v1"), (v.runtime_name, v.runtime_api_version))
        img = step("ImageStatus", "ImageService", "ImageStatus",
                   pb.ImageStatusRequest(image=pb.ImageSpec(image=image))).image
        check("ImageStatus finds the image", True, image in img.repo_tags)
        pod = runtime("RunPodSandbox", "RunPodSandbox",
                      pb.RunPodSandboxRequest(config=sandbox_config), timeout=60).pod_sandbox_id
        st = runtime("PodSandboxStatus", "PodSandboxStatus", pb.PodSandboxStatusRequest(pod_sandbox_id=pod))
        check("pod is ready", "SANDBOX_READY", pb.PodSandboxState.Name(st.status.state))
        walk_containers(pod)
    except StepFailed:
        pass
    except Exception as e:  # a broken check (say, an unexpected reply): still named, then cleaned up
        failed += 1
        print(f"not ok - {name}: unexpected {type(e).__name__}: {e}", flush=True)
    finally:
        if pod is not None:
            try:
                runtime("StopPodSandbox", "StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod), 60)
                st = rpc("RuntimeService", "PodSandboxStatus", pb.PodSandboxStatusRequest(pod_sandbox_id=pod))
                check("pod not ready after stop", "SANDBOX_NOTREADY", pb.PodSandboxState.Name(st.status.state))
                runtime("RemovePodSandbox", "RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
                try:
                    rpc("RuntimeService", "PodSandboxStatus", pb.PodSandboxStatusRequest(pod_sandbox_id=pod))
                    gone = "still there"
                except grpc.RpcError as e:
                    gone = e.code().name
                check("pod gone after remove", "NOT_FOUND", gone)
            except StepFailed:
                pass
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


main()
