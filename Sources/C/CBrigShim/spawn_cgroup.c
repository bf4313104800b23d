#define _GNU_SOURCE
#include "brig_shim.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

// posix_spawn into a cgroup: clone3(CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP) on a stack of
// its own, then in the child only async-signal-safe calls (dup2, fcntl, sigaction,
// sigprocmask) and execve, as glibc's posix_spawn does. Nothing but this file's C runs between
// the clone and the exec.

struct spawn_job {
    const char *path;
    char *const *argv;
    char *const *envp;
    const int *fds;   // (source, target) pairs
    int nfds;
    int err;          // the child's errno, if it could not exec (shared memory: CLONE_VM)
};

static int spawn_child(void *arg) {
    struct spawn_job *job = arg;
    // Signal handlers are the parent's code and memory: back to the defaults first (the parent
    // blocked every signal around the clone, so none has run here yet).
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < _NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        sigaction(sig, &dfl, NULL);  // glibc's own signals refuse (EINVAL): nothing to reset
    }
    for (int i = 0; i < job->nfds; i++) {
        int src = job->fds[2 * i], dst = job->fds[2 * i + 1];
        // posix_spawn_file_actions_adddup2's rule: an fd onto itself only loses FD_CLOEXEC.
        int rc = src == dst ? fcntl(src, F_SETFD, 0) : dup2(src, dst);
        if (rc < 0) { job->err = errno; _exit(127); }
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(job->path, job->argv, job->envp);
    job->err = errno;
    _exit(127);
}

// The raw clone3 with a new stack: the child starts on `stack` and may not return into this
// function's frame (it belongs to the parent), so it calls `fn(arg)` from the assembly and
// exits with its result, as glibc's clone() does. x86_64 only: elsewhere ENOSYS, and the
// caller spawns as before.
static long clone3_run(struct clone_args *args, int (*fn)(void *), void *arg) {
#if defined(__x86_64__)
    long ret;
    __asm__ volatile(
        "syscall\n\t"
        "test %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        "xor %%ebp, %%ebp\n\t"
        "mov %[arg], %%rdi\n\t"
        "call *%[fn]\n\t"
        "mov %%eax, %%edi\n\t"
        "mov %[exit], %%eax\n\t"
        "syscall\n\t"
        "hlt\n"
        "1:\n\t"
        : "=a"(ret)
        : "a"((long)SYS_clone3), "D"(args), "S"(sizeof *args), [fn] "r"(fn), [arg] "r"(arg), [exit] "i"(SYS_exit)
        : "rcx", "r11", "memory");
    return ret;
#else
    (void)args; (void)fn; (void)arg;
    return -ENOSYS;
#endif
}

pid_t brig_spawn_into_cgroup(const char *path, char *const argv[], char *const envp[], const int *fds, int nfds,
                             int cgroup_fd, int *exec_errno) {
    *exec_errno = 0;
    // The child's stack: it runs until execve, through sigaction/dup2/execve's own frames.
    size_t size = 64 * 1024;
    void *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return -errno;
    struct spawn_job job = { path, argv, envp, fds, nfds, 0 };
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.stack = (uint64_t)(uintptr_t)stack;
    args.stack_size = size;
    args.cgroup = (uint64_t)cgroup_fd;
    // No handler of ours may run in the child, which shares our memory until it execs.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    long pid = clone3_run(&args, spawn_child, &job);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    munmap(stack, size);  // CLONE_VFORK: the child has exec'd or exited by now
    if (pid < 0) return (pid_t)pid;
    if (job.err != 0) {
        int status;
        while (waitpid((pid_t)pid, &status, 0) < 0 && errno == EINTR) {}
        *exec_errno = job.err;
        return 0;
    }
    return (pid_t)pid;
}
