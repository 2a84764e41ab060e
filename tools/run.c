/* run.c: `heapkit run`, a program under heapkit.
 *
 * Owns: finding libheapkit.so, turning the options into the environment
 * the library reads (the contract below), starting the program with
 * LD_PRELOAD, and passing its exit status on. The reports themselves
 * (statistics, leaks, errors) are printed by the library in the program.
 *
 * Contract with the library (each variable is read once at start-up):
 *   --stats          HEAPKIT_SHOW_STATS=1    statistics at exit
 *   --leaks          HEAPKIT_LEAKS=1         leak report at exit     } preload
 *   --debug[=LIST]   HEAPKIT_DEBUG=LIST      debug checks ("all")    } libheapkit-debug.so
 *   --secure         HEAPKIT_SECURE=1        hardened mode: preload libheapkit-secure.so
 *   --json           HEAPKIT_REPORT_JSON=1   reports as JSON
 *   --output FILE    HEAPKIT_REPORT_FILE=FILE  reports to FILE ("%p": the
 *                    pid), made absolute here since the program may chdir
 *   (default)        HEAPKIT_STATS_SIGNAL=N  N = SIGRTMIN+7: `heapkit stats`
 *                    asks the process for statistics with signal N
 * heapkit's library goes first in LD_PRELOAD; entries already there stay.
 *
 * The library is libheapkit.so, or the variant the options need; the
 * variants cannot be combined (HEAPKIT_LIBRARY names one that can).
 *
 * Exit status: the program's; 128+N when signal N killed it (as a shell
 * says, with a line naming the signal); 127 when it is not found, 126 when
 * it cannot be executed; 2 on a usage error; 1 when the library is not
 * found.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tool.h"

/* Filled in by CMake: the install's library directory relative to its
 * binary directory, the Debian multiarch triplet and the libraries'
 * SOVERSION. */
#ifndef HKT_REL_LIBDIR
#define HKT_REL_LIBDIR "../lib"
#endif
#ifndef HKT_MULTIARCH
#define HKT_MULTIARCH ""
#endif
#ifndef HKT_SOVERSION
#define HKT_SOVERSION "0"
#endif

/* Offset of the default statistics signal from SIGRTMIN. */
#define HKT_STATS_SIGNAL_OFFSET 7

const char hkt_help_run[] =
    "Usage: heapkit run [OPTIONS] [--] PROGRAM [ARGS...]\n"
    "\n"
    "Runs PROGRAM with heapkit as its malloc (LD_PRELOAD=libheapkit.so) and\n"
    "the reports chosen below, printed by heapkit inside the program to\n"
    "stderr or to a file.\n"
    "\n"
    "Options:\n"
    "  --stats             statistics at exit (HEAPKIT_SHOW_STATS=1)\n"
    "  --leaks             blocks still live at exit, by call stack (HEAPKIT_LEAKS=1;\n"
    "                      runs libheapkit-debug.so)\n"
    "  --debug[=LIST]      debug checks, LIST as the library takes it, \"all\" by\n"
    "                      default (HEAPKIT_DEBUG=LIST; runs libheapkit-debug.so)\n"
    "  --secure            hardened heap (HEAPKIT_SECURE=1; runs libheapkit-secure.so)\n"
    "  --json              reports as JSON (HEAPKIT_REPORT_JSON=1)\n"
    "  -o, --output FILE   reports to FILE instead of stderr; %p in FILE stands\n"
    "                      for the process id (HEAPKIT_REPORT_FILE=FILE)\n"
    "  --stats-signal N    signal on which the program writes its statistics for\n"
    "                      'heapkit stats' (default SIGRTMIN+7, HEAPKIT_STATS_SIGNAL)\n"
    "  --no-stats-signal   do not set HEAPKIT_STATS_SIGNAL\n"
    "  -h, --help          this text\n"
    "\n"
    "The library (libheapkit.so, or the debug or secure variant the options\n"
    "need) is looked for next to heapkit (a build tree), then in ../lib and\n"
    "../lib/<multiarch> of an installation; HEAPKIT_LIBRARY=PATH chooses\n"
    "another. Earlier LD_PRELOAD entries are kept, after heapkit's.\n"
    "\n"
    "Exit status: the program's; 128+N when signal N killed it; 127 when it\n"
    "is not found, 126 when it cannot be executed; 1 when the library is not\n"
    "found; 2 on a usage error.\n";

/* ---- Finding the library ----------------------------------------------- */

static bool usable_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

/* Fills out (PATH_MAX) with the absolute path of the library `name`
 * ("libheapkit", "libheapkit-debug", ...), which `why` (or NULL) needs; on failure
 * prints why and returns false. HEAPKIT_LIBRARY overrides the search. */
static bool find_library(const char *name, const char *why, char *out) {
    const char *env = getenv("HEAPKIT_LIBRARY");
    if (env && *env) {
        if (!usable_file(env)) {
            hkt_err("HEAPKIT_LIBRARY=%s: %s", env,
                    access(env, F_OK) == 0 ? "not a readable file" : strerror(errno));
            return false;
        }
        if (realpath(env, out) == NULL) {
            hkt_err("HEAPKIT_LIBRARY=%s: %s", env, strerror(errno));
            return false;
        }
        return true;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        hkt_err("cannot find heapkit's own path (/proc/self/exe: %s); set HEAPKIT_LIBRARY",
                strerror(errno));
        return false;
    }
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    /* Build tree first (tools/heapkit beside or below the library), then
     * the install layout CMake was configured with, then the usual ones. */
    const char *dirs[] = {"", "/..", "/" HKT_REL_LIBDIR, "/../lib/" HKT_MULTIARCH, "/../lib",
                          "/../lib64"};
    hkt_buf_t tried = {0};
    for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
        if (d == 3 && HKT_MULTIARCH[0] == 0) continue;
        bool seen = false;
        for (size_t e = 0; e < d; e++) seen |= !strcmp(dirs[e], dirs[d]);
        if (seen) continue;
        for (int k = 0; k < 2; k++) {
            char path[PATH_MAX + 64];
            snprintf(path, sizeof path, "%s%s/%s.so%s", self, dirs[d], name,
                     k ? "." HKT_SOVERSION : "");
            if (usable_file(path) && realpath(path, out) != NULL) {
                hkt_buf_free(&tried);
                return true;
            }
            if (k == 0) hkt_buf_printf(&tried, "\n  %s%s", self, dirs[d]);
        }
    }
    hkt_err("%s.so%s%s%s not found; looked for it (and %s.so.%s) in:%s\n"
            "Build it, or set HEAPKIT_LIBRARY to its path.",
            name, why ? " (for " : "", why ? why : "", why ? ")" : "", name, HKT_SOVERSION,
            tried.s);
    hkt_buf_free(&tried);
    return false;
}

/* ---- Running the program ----------------------------------------------- */

static volatile sig_atomic_t child_pid;

/* Signals sent to heapkit alone (kill, a supervisor) go on to the program. */
static void forward(int sig) {
    if (child_pid > 0) kill(child_pid, sig);
}

static const int forwarded[] = {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};

static void describe_signal(int sig, char *buf, size_t size) {
    const char *abbrev = sigabbrev_np(sig);
    const char *desc = strsignal(sig);
    if (abbrev) snprintf(buf, size, "SIG%s, %s", abbrev, desc ? desc : "?");
    else if (sig >= SIGRTMIN && sig <= SIGRTMAX) snprintf(buf, size, "SIGRTMIN+%d", sig - SIGRTMIN);
    else snprintf(buf, size, "%s", desc ? desc : "?");
}

static int run_program(char **argv) {
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
        hkt_err("pipe: %s", strerror(errno));
        return HKT_EXIT_FAIL;
    }
    /* A terminal's ^C and ^\ reach the whole foreground group, the program
     * included: heapkit waits for the program's own answer (as time(1)). */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_quit;
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
    /* The forwarded signals wait until the parent knows the child's pid;
     * the child takes them with their default action after exec. */
    sigset_t fwd_set, old_mask;
    sigemptyset(&fwd_set);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaddset(&fwd_set, forwarded[i]);
    sigprocmask(SIG_BLOCK, &fwd_set, &old_mask);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        hkt_err("fork: %s", strerror(errno));
        return HKT_EXIT_FAIL;
    }
    if (pid == 0) {
        close(errpipe[0]);
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        execvp(argv[0], argv);
        int e = errno;
        ssize_t w = write(errpipe[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    child_pid = pid;
    struct sigaction fwd = {.sa_handler = forward};
    sigemptyset(&fwd.sa_mask);
    fwd.sa_flags = SA_RESTART;
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaction(forwarded[i], &fwd, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);

    close(errpipe[1]);
    int exec_errno = 0;
    ssize_t r;
    do r = read(errpipe[0], &exec_errno, sizeof exec_errno);
    while (r < 0 && errno == EINTR);
    close(errpipe[0]);

    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            hkt_err("waitpid: %s", strerror(errno));
            return HKT_EXIT_FAIL;
        }
    }
    child_pid = 0;
    if (r == (ssize_t)sizeof exec_errno) {
        if (exec_errno == ENOENT && strchr(argv[0], '/') == NULL)
            hkt_err("%s: command not found", argv[0]);
        else
            hkt_err("cannot run %s: %s", argv[0], strerror(exec_errno));
        return exec_errno == ENOENT ? 127 : 126;
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        char what[128];
        describe_signal(sig, what, sizeof what);
        hkt_err("%s killed by signal %d (%s)%s", argv[0], sig, what,
                WCOREDUMP(status) ? ", core dumped" : "");
        return 128 + sig;
    }
    return HKT_EXIT_FAIL;
}

/* ---- Options ------------------------------------------------------------- */

/* FILE made absolute against the current directory; its directory must
 * exist. NULL (after a message) otherwise. */
static char *report_path(const char *file) {
    if (*file == 0) {
        hkt_usage("run", "--output needs a file name");
        return NULL;
    }
    char *abs;
    if (file[0] == '/') {
        abs = hkt_xstrdup(file);
    } else {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd) == NULL) {
            hkt_err("getcwd: %s", strerror(errno));
            return NULL;
        }
        size_t n = strlen(cwd) + strlen(file) + 2;
        abs = hkt_xmalloc(n);
        snprintf(abs, n, "%s/%s", cwd, file);
    }
    char *dir = hkt_xstrdup(abs);
    *strrchr(dir, '/') = 0;
    struct stat st;
    bool ok = stat(*dir ? dir : "/", &st) == 0 && S_ISDIR(st.st_mode);
    if (!ok) {
        hkt_usage("run", "--output %s: directory %s does not exist", file, *dir ? dir : "/");
        free(abs);
        abs = NULL;
    }
    free(dir);
    return abs;
}

int hkt_cmd_run(int argc, char **argv) {
    enum { O_STATS = 256, O_LEAKS, O_DEBUG, O_SECURE, O_JSON, O_SIGNAL, O_NO_SIGNAL };
    static const struct option longopts[] = {
        {"stats", no_argument, NULL, O_STATS},
        {"leaks", no_argument, NULL, O_LEAKS},
        {"debug", optional_argument, NULL, O_DEBUG},
        {"secure", no_argument, NULL, O_SECURE},
        {"json", no_argument, NULL, O_JSON},
        {"output", required_argument, NULL, 'o'},
        {"stats-signal", required_argument, NULL, O_SIGNAL},
        {"no-stats-signal", no_argument, NULL, O_NO_SIGNAL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool stats = false, leaks = false, secure = false, json = false, no_signal = false;
    const char *debug = NULL, *output = NULL;
    int stats_signal = 0;
    opterr = 0;
    optind = 1;
    int c;
    /* '+': options end at the program's name, whose own options follow. */
    while ((c = getopt_long(argc, argv, "+:ho:", longopts, NULL)) != -1) {
        switch (c) {
        case O_STATS: stats = true; break;
        case O_LEAKS: leaks = true; break;
        case O_DEBUG:
            debug = optarg ? optarg : "all";
            if (*debug == 0) return hkt_usage("run", "--debug= needs a list (or no '=')");
            break;
        case O_SECURE: secure = true; break;
        case O_JSON: json = true; break;
        case 'o': output = optarg; break;
        case O_SIGNAL: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == 0 || *end || v < 1 || v > SIGRTMAX || v == SIGKILL || v == SIGSTOP)
                return hkt_usage("run", "--stats-signal %s: not a signal number that can be caught "
                                 "(1-%d)", optarg, SIGRTMAX);
            stats_signal = (int)v;
            no_signal = false;
            break;
        }
        case O_NO_SIGNAL: no_signal = true; stats_signal = 0; break;
        case 'h': fputs(hkt_help_run, stdout); return HKT_EXIT_OK;
        default: return hkt_opt_error("run", c, argv);
        }
    }
    if (optind >= argc) return hkt_usage("run", "no program to run");
    char **prog = argv + optind;

    /* Debug checks and leak reports live in libheapkit-debug.so, the
     * hardened heap in libheapkit-secure.so. */
    const char *variant = "libheapkit", *why = NULL;
    if (debug || leaks) variant = "libheapkit-debug", why = "--debug and --leaks";
    if (secure) variant = "libheapkit-secure", why = "--secure";
    const char *forced = getenv("HEAPKIT_LIBRARY");
    if (secure && (debug || leaks) && !(forced && *forced))
        return hkt_usage("run", "--secure and --debug/--leaks need two different libraries "
                         "(libheapkit-secure.so, libheapkit-debug.so): choose one, or name a "
                         "library with HEAPKIT_LIBRARY");
    char lib[PATH_MAX];
    if (!find_library(variant, why, lib)) return HKT_EXIT_FAIL;
    /* ld.so splits LD_PRELOAD at spaces and colons. */
    if (strpbrk(lib, " :")) {
        hkt_err("%s: a path with a space or ':' cannot go in LD_PRELOAD", lib);
        return HKT_EXIT_FAIL;
    }
    char *report = NULL;
    if (output && (report = report_path(output)) == NULL) return HKT_EXIT_USAGE;

    /* The environment of the program (heapkit itself is single-threaded
     * and has read all it needs). */
    const char *old = getenv("LD_PRELOAD");
    hkt_buf_t preload = {0};
    hkt_buf_add(&preload, lib, strlen(lib));
    if (old && *old) hkt_buf_printf(&preload, ":%s", old);
    setenv("LD_PRELOAD", preload.s, 1);
    hkt_buf_free(&preload);
    unsetenv("HEAPKIT_LIBRARY"); /* heapkit's, not the library's */
    if (stats) setenv("HEAPKIT_SHOW_STATS", "1", 1);
    if (leaks) setenv("HEAPKIT_LEAKS", "1", 1);
    if (debug) setenv("HEAPKIT_DEBUG", debug, 1);
    if (secure) setenv("HEAPKIT_SECURE", "1", 1);
    if (json) setenv("HEAPKIT_REPORT_JSON", "1", 1);
    if (report) setenv("HEAPKIT_REPORT_FILE", report, 1);
    free(report);
    if (no_signal) {
        unsetenv("HEAPKIT_STATS_SIGNAL");
    } else if (stats_signal || getenv("HEAPKIT_STATS_SIGNAL") == NULL) {
        char num[16];
        if (stats_signal == 0) stats_signal = SIGRTMIN + HKT_STATS_SIGNAL_OFFSET;
        snprintf(num, sizeof num, "%d", stats_signal);
        setenv("HEAPKIT_STATS_SIGNAL", num, 1);
    }
    return run_program(prog);
}
