/* probe: runs inside a container and reports what it actually got, as key=value lines.
 * Built static (gcc -static -O2) by conformance/run so it runs in any rootfs.
 * Usage: probe CMD [ARG] [CMD [ARG]...]   e.g. probe id caps nnp rlimit RLIMIT_NOFILE
 * Values never contain newlines; keys of per-path commands carry the path: stat[/dev/null].mode=0666
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void status_field(const char *field, const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[4096];
    size_t n = strlen(field);
    if (!f) { printf("%s=error:%d\n", key, errno); return; }
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            char *v = line + n + 1;
            while (*v == ' ' || *v == '\t') v++;
            v[strcspn(v, "\n")] = 0;
            printf("%s=%s\n", key, v);
            fclose(f);
            return;
        }
    }
    fclose(f);
    printf("%s=absent\n", key);
}

static void cmd_id(void) {
    gid_t groups[256];
    int n = getgroups(256, groups);
    printf("uid=%u\ngid=%u\neuid=%u\negid=%u\n", getuid(), getgid(), geteuid(), getegid());
    printf("groups=");
    for (int i = 0; i < n; i++) printf("%s%u", i ? "," : "", groups[i]);
    printf("\n");
    mode_t m = umask(0);
    umask(m);
    printf("umask=%04o\n", m);
}

static void cmd_caps(void) {
    status_field("CapInh", "cap.inheritable");
    status_field("CapPrm", "cap.permitted");
    status_field("CapEff", "cap.effective");
    status_field("CapBnd", "cap.bounding");
    status_field("CapAmb", "cap.ambient");
}

static const struct { const char *name; int res; } rlimits[] = {
    {"RLIMIT_CPU", RLIMIT_CPU}, {"RLIMIT_FSIZE", RLIMIT_FSIZE}, {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_STACK", RLIMIT_STACK}, {"RLIMIT_CORE", RLIMIT_CORE}, {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC}, {"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_AS", RLIMIT_AS}, {"RLIMIT_LOCKS", RLIMIT_LOCKS}, {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE}, {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

static void print_lim(rlim_t v) {
    if (v == RLIM_INFINITY) printf("unlimited"); else printf("%llu", (unsigned long long)v);
}

static void cmd_rlimit(const char *name) {
    for (size_t i = 0; i < sizeof rlimits / sizeof rlimits[0]; i++) {
        if (strcmp(rlimits[i].name, name) == 0) {
            struct rlimit r;
            if (getrlimit(rlimits[i].res, &r) != 0) { printf("rlimit[%s]=error:%d\n", name, errno); return; }
            printf("rlimit[%s].soft=", name); print_lim(r.rlim_cur);
            printf("\nrlimit[%s].hard=", name); print_lim(r.rlim_max);
            printf("\n");
            return;
        }
    }
    printf("rlimit[%s]=unknown\n", name);
}

static void cmd_ns(void) {
    static const char *kinds[] = {"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time",
                                  "time_for_children", "user", "uts"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char path[64], buf[256];
        snprintf(path, sizeof path, "/proc/self/ns/%s", kinds[i]);
        ssize_t n = readlink(path, buf, sizeof buf - 1);
        if (n < 0) { printf("ns.%s=absent\n", kinds[i]); continue; }
        buf[n] = 0;
        printf("ns.%s=%s\n", kinds[i], buf);
    }
}

static void print_file_line(const char *key, const char *path) {
    FILE *f = fopen(path, "r");
    char buf[4096];
    if (!f) { printf("%s=error:%d\n", key, errno); return; }
    if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
    fclose(f);
    buf[strcspn(buf, "\n")] = 0;
    printf("%s=%s\n", key, buf);
}

static void cmd_file(const char *path) {
    /* whole file, newlines turned into '|' */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char buf[16384];
    if (fd < 0) { printf("file[%s]=error:%d\n", path, errno); return; }
    ssize_t n, total = 0;
    while (total < (ssize_t)sizeof buf - 1 && (n = read(fd, buf + total, sizeof buf - 1 - total)) > 0) total += n;
    close(fd);
    buf[total] = 0;
    while (total > 0 && buf[total - 1] == '\n') buf[--total] = 0;
    for (ssize_t i = 0; i < total; i++) if (buf[i] == '\n') buf[i] = '|';
    printf("file[%s]=%s\n", path, buf);
}

static void cmd_writable(const char *path) {
    struct stat st;
    int ok, err = 0;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s/.probe-w-%d", path, (int)getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ok = fd >= 0;
        if (ok) { close(fd); unlink(tmp); } else err = errno;
    } else {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        ok = fd >= 0;
        if (ok) close(fd); else err = errno;
    }
    printf("writable[%s]=%d\n", path, ok);
    if (!ok) printf("writable[%s].errno=%d\n", path, err);
}

static void cmd_readable(const char *path) {
    struct stat st;
    int ok, err = 0;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ok = fd >= 0;
        if (ok) close(fd); else err = errno;
    } else {
        char c;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        ok = fd >= 0;
        if (ok) {
            ssize_t n = read(fd, &c, 1);
            if (n < 0 && errno != EAGAIN) { ok = 0; err = errno; }
            close(fd);
        } else err = errno;
    }
    printf("readable[%s]=%d\n", path, ok);
    if (!ok) printf("readable[%s].errno=%d\n", path, err);
}

static void cmd_stat(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) { printf("stat[%s]=error:%d\n", path, errno); return; }
    const char *t = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir" : S_ISCHR(st.st_mode) ? "c"
                  : S_ISBLK(st.st_mode) ? "b" : S_ISFIFO(st.st_mode) ? "p" : S_ISLNK(st.st_mode) ? "link" : "other";
    printf("stat[%s].type=%s\n", path, t);
    printf("stat[%s].mode=%04o\n", path, st.st_mode & 07777);
    printf("stat[%s].rdev=%u:%u\n", path, major(st.st_rdev), minor(st.st_rdev));
    printf("stat[%s].owner=%u:%u\n", path, st.st_uid, st.st_gid);
    printf("stat[%s].size=%lld\n", path, (long long)st.st_size);
    if (S_ISLNK(st.st_mode)) {
        char buf[PATH_MAX];
        ssize_t n = readlink(path, buf, sizeof buf - 1);
        if (n >= 0) { buf[n] = 0; printf("stat[%s].target=%s\n", path, buf); }
    }
}

static void cmd_sysctl(const char *key) {
    char path[512], k[64];
    snprintf(path, sizeof path, "/proc/sys/%s", key);
    for (char *p = path + 10; *p; p++) if (*p == '.') *p = '/';
    snprintf(k, sizeof k, "sysctl[%s]", key);
    print_file_line(k, path);
}

/* mountinfo: id parent maj:min root mountpoint mountopts optional... - fstype source superopts */
static void cmd_mount(const char *path) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[8192], last[8192] = "";
    if (!f) { printf("mount[%s]=error:%d\n", path, errno); return; }
    while (fgets(line, sizeof line, f)) {
        char copy[8192];
        strcpy(copy, line);
        char *save, *tok = strtok_r(copy, " ", &save);
        for (int i = 0; tok && i < 4; i++) tok = strtok_r(NULL, " ", &save);
        if (tok && strcmp(tok, path) == 0) strcpy(last, line);
    }
    fclose(f);
    if (!last[0]) { printf("mount[%s]=absent\n", path); return; }
    last[strcspn(last, "\n")] = 0;
    char *fields[64];
    int n = 0;
    char *save, *tok = strtok_r(last, " ", &save);
    while (tok && n < 64) { fields[n++] = tok; tok = strtok_r(NULL, " ", &save); }
    int dash = -1;
    for (int i = 6; i < n; i++) if (strcmp(fields[i], "-") == 0) { dash = i; break; }
    if (dash < 0 || dash + 3 >= n + 1) { printf("mount[%s]=unparsable\n", path); return; }
    printf("mount[%s]=present\n", path);
    printf("mount[%s].options=%s\n", path, fields[5]);
    printf("mount[%s].propagation=", path);
    int any = 0;
    for (int i = 6; i < dash; i++) { printf("%s%s", any ? "," : "", fields[i]); any = 1; }
    if (!any) printf("private");
    printf("\n");
    printf("mount[%s].fstype=%s\n", path, dash + 1 < n ? fields[dash + 1] : "");
    printf("mount[%s].source=%s\n", path, dash + 2 < n ? fields[dash + 2] : "");
    printf("mount[%s].superoptions=%s\n", path, dash + 3 < n ? fields[dash + 3] : "");
}

static void cmd_mkdir(const char *path) {
    int r = mkdir(path, 0755);
    printf("mkdir[%s]=%d\n", path, r == 0 ? 0 : errno);
    if (r == 0) rmdir(path);
}

static void cmd_clock(void) {
    struct timespec m, b;
    clock_gettime(CLOCK_MONOTONIC, &m);
    clock_gettime(CLOCK_BOOTTIME, &b);
    printf("clock.monotonic=%lld\nclock.boottime=%lld\n", (long long)m.tv_sec, (long long)b.tv_sec);
}

static int needs_arg(const char *c) {
    static const char *withArg[] = {"rlimit", "writable", "readable", "stat", "sysctl", "mount", "file",
                                    "mkdir", "sleep", "exit", "getenv", "touch", "alloc"};
    for (size_t i = 0; i < sizeof withArg / sizeof withArg[0]; i++) if (strcmp(c, withArg[i]) == 0) return 1;
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *c = argv[i];
        const char *a = NULL;
        if (needs_arg(c)) {
            if (i + 1 >= argc) { fprintf(stderr, "probe: %s needs an argument\n", c); return 2; }
            a = argv[++i];
        }
        if (!strcmp(c, "id")) cmd_id();
        else if (!strcmp(c, "caps")) cmd_caps();
        else if (!strcmp(c, "nnp")) status_field("NoNewPrivs", "nnp");
        else if (!strcmp(c, "seccomp")) status_field("Seccomp", "seccomp");
        else if (!strcmp(c, "rlimit")) cmd_rlimit(a);
        else if (!strcmp(c, "ns")) cmd_ns();
        else if (!strcmp(c, "hostname")) { struct utsname u; uname(&u); printf("hostname=%s\n", u.nodename); }
        else if (!strcmp(c, "domainname")) { struct utsname u; uname(&u); printf("domainname=%s\n", u.domainname); }
        else if (!strcmp(c, "env")) { for (char **e = environ; *e; e++) printf("env.%s\n", *e); }
        else if (!strcmp(c, "getenv")) { const char *v = getenv(a); printf("getenv[%s]=%s\n", a, v ? v : "(unset)"); }
        else if (!strcmp(c, "cwd")) { char b[PATH_MAX]; printf("cwd=%s\n", getcwd(b, sizeof b) ? b : "error"); }
        else if (!strcmp(c, "oom")) print_file_line("oom_score_adj", "/proc/self/oom_score_adj");
        else if (!strcmp(c, "pid")) printf("pid=%d\nppid=%d\n", (int)getpid(), (int)getppid());
        else if (!strcmp(c, "args")) { for (int j = 0; j < argc; j++) printf("arg.%d=%s\n", j, argv[j]); }
        else if (!strcmp(c, "cgroup")) cmd_file("/proc/self/cgroup");
        else if (!strcmp(c, "file")) cmd_file(a);
        else if (!strcmp(c, "writable")) cmd_writable(a);
        else if (!strcmp(c, "readable")) cmd_readable(a);
        else if (!strcmp(c, "stat")) cmd_stat(a);
        else if (!strcmp(c, "sysctl")) cmd_sysctl(a);
        else if (!strcmp(c, "mount")) cmd_mount(a);
        else if (!strcmp(c, "mkdir")) cmd_mkdir(a);
        else if (!strcmp(c, "touch")) { int fd = open(a, O_WRONLY | O_CREAT | O_CLOEXEC, 0644); printf("touch[%s]=%d\n", a, fd >= 0 ? 0 : errno); if (fd >= 0) close(fd); }
        else if (!strcmp(c, "clock")) cmd_clock();
        else if (!strcmp(c, "isatty")) printf("isatty.0=%d\nisatty.1=%d\n", isatty(0), isatty(1));
        else if (!strcmp(c, "winsize")) {
            struct winsize w;
            if (ioctl(0, TIOCGWINSZ, &w) == 0) printf("winsize=%ux%u\n", w.ws_row, w.ws_col);
            else printf("winsize=error:%d\n", errno);
        }
        else if (!strcmp(c, "alloc")) {
            /* touch N MiB, one page at a time (an OOM kill ends the probe here) */
            size_t n = (size_t)atoi(a) << 20;
            char *m = malloc(n);
            for (size_t o = 0; m && o < n; o += 4096) m[o] = 1;
            printf("alloc[%s]=%d\n", a, m != NULL);
        }
        else if (!strcmp(c, "sleep")) { fflush(stdout); sleep((unsigned)atoi(a)); }
        else if (!strcmp(c, "exit")) { fflush(stdout); return atoi(a); }
        else if (!strcmp(c, "end")) printf("end=1\n");
        else { fprintf(stderr, "probe: unknown command %s\n", c); return 2; }
    }
    return 0;
}
