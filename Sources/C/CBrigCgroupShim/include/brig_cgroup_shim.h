#pragma once
#include <stdint.h>

// bpf(2) for the cgroup v2 devices controller. Each returns -1 with errno set on failure.

/// BPF_PROG_LOAD of a BPF_PROG_TYPE_CGROUP_DEVICE program; returns the program fd.
/// `log`/`log_size` receive the verifier log when non-NULL/non-zero.
int brig_bpf_load_device_prog(const void *insns, uint32_t insn_cnt, char *log, uint32_t log_size);

/// BPF_PROG_ATTACH (BPF_CGROUP_DEVICE) of `prog_fd` to the cgroup directory `cgroup_fd`.
int brig_bpf_attach_device_prog(int cgroup_fd, int prog_fd, uint32_t flags);

/// BPF_PROG_DETACH (BPF_CGROUP_DEVICE).
int brig_bpf_detach_device_prog(int cgroup_fd, int prog_fd);

/// BPF_PROG_QUERY (BPF_CGROUP_DEVICE): fills up to *count ids, sets *count to the number attached.
int brig_bpf_query_device_progs(int cgroup_fd, uint32_t *ids, uint32_t *count);

/// BPF_PROG_GET_FD_BY_ID.
int brig_bpf_prog_fd_by_id(uint32_t id);

/// BPF_F_ALLOW_MULTI.
uint32_t brig_bpf_f_allow_multi(void);
