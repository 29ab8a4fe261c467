// SPDX-License-Identifier: MIT
/*
 * eqctl (userspace/eqctl): each command run as a process, checking its
 * stdout, its one-line error on stderr and its exit status (sysexits.h),
 * and what it did to the queue through libelasticq.  The binary is
 * build/bin/eqctl next to this one's build/selftests/.
 *
 * Each test uses the named queues "eqctl.<pid>.a" and ".b" (the harness
 * forks one process per test), destroyed in teardown.
 */
#include <limits.h>
#include <sched.h>
#include <sysexits.h>
#include <sys/mount.h>

#define EQ_CUSTOM_FIXTURE
#include "eq_test.h"
#include "libelasticq.h"

#define OUT_MAX		(1 << 20)
#define RUN_TIMEOUT_MS	20000

/* What one run of eqctl did. */
struct run {
	int status;		/* exit status, 1000 + signal, or -1 */
	uint64_t elapsed_ns;
	size_t out_len;
	char out[OUT_MAX];
	char err[8192];
};

FIXTURE(ctl) {
	EQ_FIXTURE_FIELDS;
	char a[ELASTICQ_NAME_SIZE], b[ELASTICQ_NAME_SIZE];
	struct run *r;
};

FIXTURE_SETUP(ctl)
{
	EQ_FIXTURE_SETUP_BODY;
	snprintf(self->a, sizeof(self->a), "eqctl.%d.a", getpid());
	snprintf(self->b, sizeof(self->b), "eqctl.%d.b", getpid());
	self->r = malloc(sizeof(*self->r));
	ASSERT_NE(NULL, self->r);
	umask(022);
}

FIXTURE_TEARDOWN(ctl)
{
	int ra = elasticq_destroy(self->a), rb = elasticq_destroy(self->b);

	EXPECT_TRUE(ra == 0 || ra == -ENOENT);
	EXPECT_TRUE(rb == 0 || rb == -ENOENT);
	free(self->r);
	EQ_FIXTURE_TEARDOWN_BODY;
}

/* build/bin/eqctl, from this binary's build/selftests/eqctl. */
static const char *eqctl_path(void)
{
	static char path[PATH_MAX];
	char *slash;
	ssize_t n;
	int i;

	if (path[0])
		return path;
	n = readlink("/proc/self/exe", path, sizeof(path) - 16);
	if (n < 0)
		return "build/bin/eqctl";
	path[n] = '\0';
	for (i = 0; i < 2 && (slash = strrchr(path, '/')); i++)
		*slash = '\0';
	strcat(path, "/bin/eqctl");
	return path;
}

/* Set up the child before exec (drop privileges, hide the device...). */
typedef int (*pre_exec_fn)(void);

/* A file with @len bytes of @data, at offset 0; or -1. */
static int memfile(const char *name, const void *data, size_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (len && write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

/*
 * Run eqctl with @argv (argv[0] included), @in on stdin; stdout and
 * stderr go to memory files (not a tty, no pipe to drain meanwhile).  A
 * run that takes more than RUN_TIMEOUT_MS is killed (status 1009).
 */
static void run_eqctl(struct run *r, const char *in, size_t in_len,
		      pre_exec_fn pre, const char *const *argv)
{
	int ifd = memfile("in", in, in_len), ofd = memfile("out", NULL, 0);
	int efd = memfile("err", NULL, 0), status, waited = 0;
	const char *path = eqctl_path();	/* before a pre() hides /proc */
	uint64_t t0 = eq_now_ns();
	ssize_t n;
	pid_t pid;

	memset(r, 0, offsetof(struct run, out));
	r->out[0] = r->err[0] = '\0';
	r->status = -1;
	if (ifd < 0 || ofd < 0 || efd < 0)
		goto out;
	pid = fork();
	if (pid < 0)
		goto out;
	if (!pid) {
		if (dup2(ifd, 0) < 0 || dup2(ofd, 1) < 0 || dup2(efd, 2) < 0)
			_exit(126);
		if (pre && pre())
			_exit(125);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (waited++ == RUN_TIMEOUT_MS)
			kill(pid, SIGKILL);
		usleep(1000);
	}
	r->elapsed_ns = eq_now_ns() - t0;
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) :
		    1000 + WTERMSIG(status);
	n = pread(ofd, r->out, sizeof(r->out) - 1, 0);
	r->out_len = n > 0 ? n : 0;
	r->out[r->out_len] = '\0';
	n = pread(efd, r->err, sizeof(r->err) - 1, 0);
	r->err[n > 0 ? n : 0] = '\0';
out:
	close(ifd);
	close(ofd);
	close(efd);
}

#define ARGV(...)	((const char *const []){ "eqctl", __VA_ARGS__, NULL })
/* eqctl ARGS..., nothing on stdin */
#define EQCTL(r, ...)	run_eqctl(r, NULL, 0, NULL, ARGV(__VA_ARGS__))
/* eqctl ARGS... with the string @in on stdin */
#define EQCTL_IN(r, in, ...) \
	run_eqctl(r, in, strlen(in), NULL, ARGV(__VA_ARGS__))

/* "eqctl: QUEUE: WHAT: strerror(ERR)\n", to compare stderr with. */
static const char *errline(const char *queue, const char *what, int err)
{
	static char line[256];

	snprintf(line, sizeof(line), "eqctl: %s: %s: %s\n", queue, what,
		 strerror(err));
	return line;
}

/* The value after "FIELD:" at the start of a line of @out, or -1. */
static long long field(const char *out, const char *name)
{
	size_t len = strlen(name);
	const char *p = out;

	for (; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, name, len) && p[len] == ':')
			return strtoll(p + len + 1, NULL, 10);
	return -1;
}

/* The line of @out whose first word is @word, split at blanks. */
static int find_row(const char *out, const char *word, char tok[][64],
		    int max)
{
	char line[1024], *save, *t;
	const char *p = out, *nl;
	int n;

	for (; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl || (size_t)(nl - p) >= sizeof(line))
			return -1;
		memcpy(line, p, nl - p);
		line[nl - p] = '\0';
		n = 0;
		for (t = strtok_r(line, " ", &save); t && n < max;
		     t = strtok_r(NULL, " ", &save))
			snprintf(tok[n++], 64, "%s", t);
		if (n && !strcmp(tok[0], word))
			return n;
	}
	return -1;
}

static bool starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* The text after "FIELD:" and its padding, up to the newline. */
static const char *sfield(const char *out, const char *name)
{
	static char val[128];
	size_t len = strlen(name);
	const char *p = out;

	for (; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, name, len) && p[len] == ':') {
			p += len + 1 + strspn(p + len + 1, " ");
			snprintf(val, sizeof(val), "%.*s", (int)strcspn(p, "\n"), p);
			return val;
		}
	return "";
}

static int lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static long long queue_len(const char *name)
{
	struct elasticq_stats st;
	int fd = elasticq_open(name, O_RDONLY, 0, 0, NULL), ret;

	if (fd < 0)
		return fd;
	ret = elasticq_get_stats(fd, &st);
	close(fd);
	return ret ? ret : (long long)st.len;
}

/* Create @name with the module's defaults; 0 or -errno. */
static int create(const char *name)
{
	int fd = elasticq_open(name, O_RDWR, ELASTICQ_ATTACH_CREATE, 0600, NULL);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static int push_msgs(const char *name, const char *const *msgs, int n)
{
	int fd = elasticq_open(name, O_WRONLY, 0, 0, NULL), i, ret = 0;

	if (fd < 0)
		return fd;
	for (i = 0; i < n && !ret; i++)
		ret = elasticq_push(fd, msgs[i], strlen(msgs[i]));
	close(fd);
	return ret;
}

TEST_F(ctl, help_and_usage)
{
	struct run *r = self->r;

	EQCTL(r, "--help");
	EXPECT_EQ(0, r->status);
	EXPECT_TRUE(starts(r->out, "usage: eqctl"));
	EXPECT_NE(NULL, strstr(r->out, "eqctl watch [NAME]"));
	EXPECT_STREQ("", r->err);
	EQCTL(r, "pop", "--help");
	EXPECT_EQ(0, r->status);
	EXPECT_TRUE(starts(r->out, "usage: eqctl pop [NAME]"));

	run_eqctl(r, NULL, 0, NULL, (const char *const []){ "eqctl", NULL });
	EXPECT_EQ(EX_USAGE, r->status);
	EXPECT_TRUE(starts(r->err, "usage: eqctl"));
	EXPECT_STREQ("", r->out);
	EQCTL(r, "frob");
	EXPECT_EQ(EX_USAGE, r->status);
	EXPECT_TRUE(starts(r->err, "eqctl: unknown command 'frob'\n"));
	EQCTL(r, "create");
	EXPECT_EQ(EX_USAGE, r->status);
	EXPECT_TRUE(starts(r->err, "eqctl: create: missing NAME\nusage: eqctl create NAME"));
	EQCTL(r, "create", self->a, "--bogus");
	EXPECT_EQ(EX_USAGE, r->status);
	EXPECT_TRUE(starts(r->err, "eqctl: create: bad option '--bogus'\n"));
	EXPECT_EQ(-ENOENT, queue_len(self->a));
	EQCTL(r, "create", self->a, "--min");
	EXPECT_EQ(EX_USAGE, r->status);
	EQCTL(r, "destroy", "-");
	EXPECT_EQ(EX_USAGE, r->status);
	EQCTL(r, "stats", self->a, "extra");
	EXPECT_EQ(EX_USAGE, r->status);
	EXPECT_TRUE(starts(r->err, "eqctl: stats: unexpected argument 'extra'\n"));
	EQCTL(r, "list", "extra");
	EXPECT_EQ(EX_USAGE, r->status);
	EQCTL(r, "pop", "-n", "0");
	EXPECT_EQ(EX_USAGE, r->status);
}

TEST_F(ctl, create_destroy)
{
	struct run *r = self->r;

	EQCTL(r, "create", self->a);
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	EXPECT_STREQ("", r->out);
	EXPECT_STREQ("", r->err);
	EXPECT_EQ(0, queue_len(self->a));
	/* Again: left as it is; with --excl an error. */
	EQCTL(r, "create", self->a);
	EXPECT_EQ(0, r->status);
	EQCTL(r, "create", "--excl", self->a);
	EXPECT_EQ(EX_CANTCREAT, r->status);
	EXPECT_STREQ(errline(self->a, "attach", EEXIST), r->err);

	EQCTL(r, "destroy", self->a);
	EXPECT_EQ(0, r->status);
	EXPECT_STREQ("", r->err);
	EXPECT_EQ(-ENOENT, queue_len(self->a));
	EQCTL(r, "destroy", self->a);
	EXPECT_EQ(EX_NOINPUT, r->status);
	EXPECT_STREQ(errline(self->a, "destroy", ENOENT), r->err);
	/* The kernel's name rules. */
	EQCTL(r, "create", "bad/name");
	EXPECT_EQ(EX_USAGE, r->status);
	EXPECT_STREQ(errline("bad/name", "attach", EINVAL), r->err);
}

TEST_F(ctl, create_options)
{
	struct elasticq_config cfg;
	struct run *r = self->r;
	char proc[1 << 16], tok[19][64];
	int fd;

	EQCTL(r, "create", self->a, "--min", "16", "--max", "128",
	      "--initial", "32", "--growth", "150", "--shrink", "20",
	      "--max-msg", "4K", "--max-bytes", "1M", "--policy", "reject",
	      "--push-timeout", "250", "--pop-timeout", "500",
	      "--mode", "640", "--excl");
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	fd = elasticq_open(self->a, O_RDONLY, 0, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, elasticq_get_config(fd, &cfg));
	close(fd);
	EXPECT_EQ(16, cfg.min_capacity);
	EXPECT_EQ(128, cfg.max_capacity);
	EXPECT_EQ(32, cfg.initial_capacity);
	EXPECT_EQ(150, cfg.growth_pct);
	EXPECT_EQ(20, cfg.shrink_pct);
	EXPECT_EQ(4096, cfg.max_msg_size);
	EXPECT_EQ(1 << 20, cfg.max_bytes);
	EXPECT_EQ(ELASTICQ_FULL_REJECT, cfg.full_policy);
	EXPECT_EQ(250 * EQ_MS, cfg.push_timeout_ns);
	EXPECT_EQ(500 * EQ_MS, cfg.pop_timeout_ns);
	EXPECT_EQ(eq_variant(), cfg.variant);
	ASSERT_LT(0, eq_read_text("/proc/elasticq", proc, sizeof(proc)));
	ASSERT_EQ(19, find_row(proc, self->a, tok, 19));
	EXPECT_STREQ("0640", tok[3]);

	/* --max alone: the other bounds follow it down. */
	EQCTL(r, "create", self->b, "--max", "100", "--variant",
	      eq_lockfree() ? "lockfree" : "locked");
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	fd = elasticq_open(self->b, O_RDONLY, 0, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, elasticq_get_config(fd, &cfg));
	close(fd);
	EXPECT_EQ(100, cfg.max_capacity);
	EXPECT_EQ(100, cfg.min_capacity);
	EXPECT_EQ(100, cfg.initial_capacity);
	ASSERT_EQ(0, elasticq_destroy(self->b));

	/* A lock-free queue has no drop-oldest policy: the kernel says so. */
	EQCTL(r, "create", self->b, "--policy", "drop-oldest");
	if (eq_lockfree()) {
		EXPECT_EQ(EX_USAGE, r->status);
		EXPECT_STREQ(errline(self->b, "attach", EINVAL), r->err);
		EXPECT_EQ(-ENOENT, queue_len(self->b));
	} else {
		EXPECT_EQ(0, r->status);
		EXPECT_EQ(0, queue_len(self->b));
	}

	/* Values eqctl itself refuses; nothing is created. */
	ASSERT_EQ(0, elasticq_destroy(self->a));
	EQCTL(r, "create", self->a, "--policy", "sometimes");
	EXPECT_EQ(EX_USAGE, r->status);
	EXPECT_TRUE(starts(r->err, "eqctl: create: bad policy 'sometimes'\n"));
	EQCTL(r, "create", self->a, "--min", "-1");
	EXPECT_EQ(EX_USAGE, r->status);
	EQCTL(r, "create", self->a, "--min", "12abc");
	EXPECT_EQ(EX_USAGE, r->status);
	EQCTL(r, "create", self->a, "--max", "4294967296");
	EXPECT_EQ(EX_USAGE, r->status);
	EQCTL(r, "create", self->a, "--mode", "0999");
	EXPECT_EQ(EX_USAGE, r->status);
	EQCTL(r, "create", self->a, "--max-bytes", "5X");
	EXPECT_EQ(EX_USAGE, r->status);
	EQCTL(r, "create", self->a, "--variant", "fast");
	EXPECT_EQ(EX_USAGE, r->status);
	EXPECT_EQ(-ENOENT, queue_len(self->a));
	/* Values only the kernel refuses. */
	EQCTL(r, "create", self->a, "--growth", "100");
	EXPECT_EQ(EX_USAGE, r->status);
	EXPECT_STREQ(errline(self->a, "attach", EINVAL), r->err);
	EXPECT_EQ(-ENOENT, queue_len(self->a));
}

TEST_F(ctl, list)
{
	static const char *const msgs[] = { "x", "y", "z" };
	char tok[16][64], *p, *nl, num[16];
	struct elasticq_config load;
	struct run *r = self->r;
	size_t width = 0;
	int rows = 0;

	eq_load_config(&load);

	ASSERT_EQ(0, create(self->a));
	ASSERT_EQ(0, push_msgs(self->a, msgs, 3));
	EQCTL(r, "create", self->b, "--max", "128");
	ASSERT_EQ(0, r->status);
	EQCTL(r, "list");
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	EXPECT_STREQ("", r->err);
	EXPECT_TRUE(starts(r->out, "NAME "));
	/* An aligned table: padded cells, the last right-aligned. */
	for (p = r->out; (nl = strchr(p, '\n')); p = nl + 1, rows++) {
		if (!width)
			width = nl - p;
		EXPECT_EQ(width, (size_t)(nl - p));
	}
	EXPECT_LE(4, rows);
	ASSERT_EQ(12, find_row(r->out, "NAME", tok, 16));
	EXPECT_STREQ("LEN", tok[3]);
	EXPECT_STREQ("MIN", tok[5]);
	EXPECT_STREQ("CONSUMERS", tok[11]);
	ASSERT_EQ(12, find_row(r->out, self->a, tok, 16));
	EXPECT_STREQ(eq_lockfree() ? "lockfree" : "locked", tok[1]);
	EXPECT_STREQ("block", tok[2]);
	EXPECT_STREQ("3", tok[3]);
	snprintf(num, sizeof(num), "%u", load.min_capacity);
	EXPECT_STREQ(num, tok[5]);
	snprintf(num, sizeof(num), "%u", load.max_capacity);
	EXPECT_STREQ(num, tok[6]);
	EXPECT_STREQ("3", tok[8]);	/* enqueued */
	EXPECT_STREQ("0", tok[9]);
	ASSERT_EQ(12, find_row(r->out, self->b, tok, 16));
	EXPECT_STREQ("0", tok[3]);
	EXPECT_STREQ("128", tok[4]);	/* capacity */
	EXPECT_STREQ("128", tok[6]);
	EXPECT_EQ(12, find_row(r->out, "(default)", tok, 16));
}

TEST_F(ctl, stats)
{
	static const char *const msgs[] = { "hello", "world" };
	struct run *r = self->r;
	const char *p;

	ASSERT_EQ(0, create(self->a));
	ASSERT_EQ(0, push_msgs(self->a, msgs, 2));
	EQCTL(r, "stats", self->a);
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	EXPECT_EQ(2, field(r->out, "len"));
	EXPECT_EQ(10, field(r->out, "bytes"));
	EXPECT_EQ(2, field(r->out, "enqueued"));
	EXPECT_EQ(0, field(r->out, "dequeued"));
	EXPECT_EQ(2, field(r->out, "high_water"));
	EXPECT_EQ(0, field(r->out, "consumers"));
	EXPECT_EQ(0, field(r->out, "dropped"));
	EXPECT_LT(0, field(r->out, "max_capacity"));
	EXPECT_LT(0, field(r->out, "mem_bytes"));
	EXPECT_STREQ(eq_lockfree() ? "lockfree" : "locked",
		     sfield(r->out, "variant"));
	EXPECT_STREQ("block", sfield(r->out, "full_policy"));
	EXPECT_STREQ("none", sfield(r->out, "pop_timeout_ns"));
	EXPECT_STREQ(self->a, sfield(r->out, "queue"));
	/* Aligned: every value starts in the same column. */
	for (p = r->out; *p; p = strchr(p, '\n') + 1) {
		EXPECT_TRUE(p[19] != ' ' && p[18] == ' ');
	}
	EQCTL(r, "stats");
	EXPECT_EQ(0, r->status);
	EXPECT_STREQ("(default)", sfield(r->out, "queue"));
	EQCTL(r, "stats", "-");
	EXPECT_EQ(0, r->status);
	EXPECT_STREQ("(default)", sfield(r->out, "queue"));
	EQCTL(r, "stats", self->b);
	EXPECT_EQ(EX_NOINPUT, r->status);
	EXPECT_STREQ(errline(self->b, "attach", ENOENT), r->err);
	EXPECT_STREQ("", r->out);
}

TEST_F(ctl, watch)
{
	char tok[8][64], *line2;
	struct run *r = self->r;
	double rate;
	pid_t pid;

	ASSERT_EQ(0, create(self->a));
	/* A producer at about 100 messages/s for the whole watch. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int fd = elasticq_open(self->a, O_WRONLY, 0, 0, NULL), i;

		for (i = 0; fd >= 0 && i < 300; i++) {
			elasticq_push(fd, "m", 1);
			eq_sleep_ms(10);
		}
		_exit(0);
	}
	self->child[0] = pid;
	EQCTL(r, "watch", self->a, "-n", "2", "-i", "0.2");
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	EXPECT_STREQ("", r->err);
	EXPECT_LE(400 * EQ_MS, r->elapsed_ns);
	EXPECT_GT(5000 * EQ_MS, r->elapsed_ns);
	ASSERT_EQ(3, lines(r->out)) TH_LOG("%s", r->out);
	ASSERT_EQ(6, find_row(r->out, "TIME", tok, 8));
	EXPECT_STREQ("ENQ/S", tok[4]);
	/* No tty: plain lines, TIME LEN CAPACITY MEM ENQ/S DEQ/S. */
	EXPECT_EQ(NULL, strchr(r->out, '\r'));
	line2 = strchr(r->out, '\n') + 1;
	EXPECT_EQ(6, sscanf(line2, "%63s %63s %63s %63s %lf %63s", tok[0], tok[1],
			    tok[2], tok[3], &rate, tok[5]));
	EXPECT_LT(10, rate);
	EXPECT_GT(1000, rate);
	eq_kill_child(&self->child[0]);

	EQCTL(r, "watch", self->a, "-n", "0");
	EXPECT_EQ(EX_USAGE, r->status);
	EQCTL(r, "watch", self->a, "-i", "soon");
	EXPECT_EQ(EX_USAGE, r->status);
	EQCTL(r, "watch", self->b, "-n", "1");
	EXPECT_EQ(EX_NOINPUT, r->status);
	EXPECT_STREQ(errline(self->b, "attach", ENOENT), r->err);
}

TEST_F(ctl, push_args_pop)
{
	struct run *r = self->r;

	ASSERT_EQ(0, create(self->a));
	EQCTL(r, "push", self->a, "a", "bb", "", "ccc");
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	EXPECT_STREQ("", r->out);
	EXPECT_EQ(4, queue_len(self->a));
	/* -n 2 takes two and leaves the rest. */
	EQCTL(r, "pop", self->a, "-n", "2");
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	EXPECT_STREQ("a\nbb\n", r->out);
	EXPECT_EQ(2, queue_len(self->a));
	EQCTL(r, "pop", self->a, "-n", "2");
	EXPECT_STREQ("\nccc\n", r->out);
	EXPECT_EQ(0, queue_len(self->a));
	/* "-" is the default queue. */
	EQCTL(r, "push", "-", "to-default");
	EXPECT_EQ(0, r->status);
	EQCTL(r, "pop", "-", "-n", "1");
	EXPECT_EQ(0, r->status);
	EXPECT_STREQ("to-default\n", r->out);
}

TEST_F(ctl, push_stdin)
{
	static char in[65536], *p;
	struct run *r = self->r;
	int i;

	ASSERT_EQ(0, create(self->a));
	/* The last line needs no newline; an empty line is a message. */
	EQCTL_IN(r, "one\ntwo\n\nlast", "push", self->a);
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	EXPECT_EQ(4, queue_len(self->a));
	EQCTL(r, "pop", self->a, "--nonblock");
	EXPECT_EQ(0, r->status);
	EXPECT_STREQ("one\ntwo\n\nlast\n", r->out);
	/* --nonblock on an empty queue: nothing, and no error. */
	EQCTL(r, "pop", self->a, "--nonblock");
	EXPECT_EQ(0, r->status);
	EXPECT_STREQ("", r->out);
	EXPECT_STREQ("", r->err);
	EQCTL_IN(r, "", "push", self->a);
	EXPECT_EQ(0, r->status);
	EXPECT_EQ(0, queue_len(self->a));

	/* More lines than one batch holds, in order. */
	for (i = 0, p = in; i < 3000; i++)
		p += sprintf(p, "line %d\n", i);
	EQCTL_IN(r, in, "push", self->a);
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	EXPECT_EQ(3000, queue_len(self->a));
	EQCTL(r, "pop", self->a, "-n", "3000");
	EXPECT_EQ(0, r->status);
	EXPECT_STREQ(in, r->out);
}

TEST_F(ctl, pop_raw)
{
	static const char bin[] = { 'c', '\0', 'd', '\n' };
	struct run *r = self->r;
	int fd;

	ASSERT_EQ(0, create(self->a));
	fd = elasticq_open(self->a, O_WRONLY, 0, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, elasticq_push(fd, "ab", 2));
	ASSERT_EQ(0, elasticq_push(fd, bin, sizeof(bin)));
	close(fd);
	EQCTL(r, "pop", self->a, "--raw", "-n", "2");
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	ASSERT_EQ(6, r->out_len);
	EXPECT_EQ(0, memcmp(r->out, "abc\0d\n", 6));
}

TEST_F(ctl, pop_nonblock_timeout)
{
	static const char *const msgs[] = { "p", "q" };
	struct run *r = self->r;

	ASSERT_EQ(0, create(self->a));
	ASSERT_EQ(0, push_msgs(self->a, msgs, 2));
	/* Fewer than COUNT queued: --nonblock stops when empty. */
	EQCTL(r, "pop", self->a, "-n", "5", "--nonblock");
	EXPECT_EQ(0, r->status);
	EXPECT_STREQ("p\nq\n", r->out);
	EQCTL(r, "pop", self->a, "--timeout", "100");
	EXPECT_EQ(EX_TEMPFAIL, r->status);
	EXPECT_STREQ(errline(self->a, "pop", ETIMEDOUT), r->err);
	EXPECT_LE(100 * EQ_MS, r->elapsed_ns);
	EQCTL(r, "pop", self->a, "--timeout", "100", "--nonblock");
	EXPECT_EQ(EX_USAGE, r->status);
	EQCTL(r, "pop", self->b, "--nonblock");
	EXPECT_EQ(EX_NOINPUT, r->status);
	EXPECT_STREQ(errline(self->b, "attach", ENOENT), r->err);
}

TEST_F(ctl, push_errors)
{
	struct run *r = self->r;

	EQCTL(r, "push", self->a, "x");
	EXPECT_EQ(EX_NOINPUT, r->status);
	EXPECT_STREQ(errline(self->a, "attach", ENOENT), r->err);
	/* Full with policy reject: the first two went in. */
	EQCTL(r, "create", self->a, "--max", "2", "--policy", "reject",
	      "--max-msg", "8");
	ASSERT_EQ(0, r->status) TH_LOG("%s", r->err);
	EQCTL(r, "push", self->a, "x", "y", "z");
	EXPECT_EQ(EX_TEMPFAIL, r->status);
	EXPECT_STREQ(errline(self->a, "push", EAGAIN), r->err);
	EXPECT_EQ(2, queue_len(self->a));
	EQCTL(r, "pop", self->a, "-n", "2");
	EXPECT_EQ(0, r->status);
	EQCTL(r, "push", self->a, "123456789");
	EXPECT_EQ(EX_DATAERR, r->status);
	EXPECT_STREQ(errline(self->a, "push", EMSGSIZE), r->err);
	EQCTL_IN(r, "12345678\n123456789\n", "push", self->a);
	EXPECT_EQ(EX_DATAERR, r->status);
	EXPECT_EQ(1, queue_len(self->a));
	/* Full with policy block: --nonblock fails instead of waiting. */
	EQCTL(r, "create", self->b, "--max", "1");
	ASSERT_EQ(0, r->status);
	EQCTL(r, "push", "--nonblock", self->b, "x", "y");
	EXPECT_EQ(EX_TEMPFAIL, r->status);
	EXPECT_STREQ(errline(self->b, "push", EAGAIN), r->err);
	EXPECT_EQ(1, queue_len(self->b));
}

TEST_F(ctl, pop_consumer_busy)
{
	static const char *const msgs[] = { "m" };
	struct run *r = self->r;
	int fd;

	ASSERT_EQ(0, create(self->a));
	ASSERT_EQ(0, push_msgs(self->a, msgs, 1));
	fd = elasticq_open(self->a, O_RDONLY, 0, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, elasticq_consume(fd));
	EQCTL(r, "pop", self->a, "--nonblock");
	if (eq_lockfree()) {
		EXPECT_EQ(EX_TEMPFAIL, r->status);
		EXPECT_STREQ(errline(self->a, "pop", EBUSY), r->err);
		EXPECT_EQ(1, queue_len(self->a));
	} else {
		EXPECT_EQ(0, r->status);	/* several consumers */
		EXPECT_STREQ("m\n", r->out);
	}
	close(fd);
}

static int as_nobody(void)
{
	return eq_drop_privileges();
}

/* owner: shows, and changes as chown(1)/chmod(1) would. */
TEST_F(ctl, owner)
{
	struct run *r = self->r;

	EQCTL(r, "owner");
	EXPECT_EQ(0, r->status);
	EXPECT_STREQ("(default) 0 0 0662\n", r->out);
	EQCTL(r, "owner", "-", "65534:65534", "--mode", "0620");
	EXPECT_EQ(0, r->status);
	EXPECT_STREQ("(default) 65534 65534 0620\n", r->out);
	EQCTL(r, "owner", "-", ":0");
	EXPECT_EQ(0, r->status);
	EXPECT_STREQ("(default) 65534 0 0620\n", r->out);
	EQCTL(r, "owner", "-", "root");
	EXPECT_EQ(0, r->status);
	EXPECT_STREQ("(default) 0 0 0620\n", r->out);
	/* Not the owner, no CAP_CHOWN: EPERM, nothing changed. */
	EQCTL(r, "create", self->a, "--mode", "0666");
	ASSERT_EQ(0, r->status);
	run_eqctl(r, NULL, 0, as_nobody, ARGV("owner", self->a, "65534"));
	EXPECT_EQ(EX_NOPERM, r->status);
	EXPECT_STREQ(errline(self->a, "owner", EPERM), r->err);
	run_eqctl(r, NULL, 0, as_nobody, ARGV("owner", self->a));
	EXPECT_EQ(0, r->status);
	/* Bad arguments: usage errors, nothing changed. */
	EQCTL(r, "owner", self->a, "no-such-user-here");
	EXPECT_EQ(EX_USAGE, r->status);
	EQCTL(r, "owner", self->a, ":");
	EXPECT_EQ(EX_USAGE, r->status);
	EQCTL(r, "owner", self->a, "--mode", "0800");
	EXPECT_EQ(EX_USAGE, r->status);
	EQCTL(r, "owner", self->a, "0", "extra");
	EXPECT_EQ(EX_USAGE, r->status);
	EQCTL(r, "owner", self->a);
	EXPECT_EQ(0, r->status);
	EXPECT_NE(NULL, strstr(r->out, " 0 0 0")) {
		TH_LOG("%s", r->out);
	}
}

TEST_F(ctl, permission)
{
	struct run *r = self->r;
	char tok[16][64];
	mode_t old;

	EQCTL(r, "create", self->a, "--mode", "0600");
	ASSERT_EQ(0, r->status);
	run_eqctl(r, NULL, 0, as_nobody, ARGV("push", self->a, "x"));
	EXPECT_EQ(EX_NOPERM, r->status);
	EXPECT_STREQ(errline(self->a, "attach", EACCES), r->err);
	run_eqctl(r, NULL, 0, as_nobody, ARGV("destroy", self->a));
	EXPECT_EQ(EX_NOPERM, r->status);
	EXPECT_STREQ(errline(self->a, "destroy", EPERM), r->err);
	/*
	 * list shows only the queues the user may use; without read
	 * permission it shows what it may: no bounds.
	 */
	old = umask(0);
	EQCTL(r, "create", self->b, "--mode", "0602");
	umask(old);
	ASSERT_EQ(0, r->status);
	run_eqctl(r, NULL, 0, as_nobody, ARGV("list"));
	EXPECT_EQ(0, r->status);
	EXPECT_EQ(-1, find_row(r->out, self->a, tok, 16));
	ASSERT_EQ(12, find_row(r->out, self->b, tok, 16));
	EXPECT_STREQ("-", tok[5]);
	EXPECT_EQ(0, queue_len(self->a));
}

/* A private /dev (and /proc) without the module's files. */
static int hide_dev(void)
{
	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("none", "/dev", "tmpfs", 0, NULL))
		return -1;
	return 0;
}

static int hide_proc(void)
{
	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("none", "/proc", "tmpfs", 0, NULL))
		return -1;
	return 0;
}

TEST_F(ctl, no_module)
{
	static const char want[] = "eqctl: /dev/elasticq: open: No such file "
				   "or directory (is the elasticq module loaded?)\n";
	struct run *r = self->r;

	run_eqctl(r, NULL, 0, hide_dev, ARGV("stats"));
	EXPECT_EQ(EX_UNAVAILABLE, r->status);
	EXPECT_STREQ(want, r->err);
	run_eqctl(r, NULL, 0, hide_dev, ARGV("push", self->a, "x"));
	EXPECT_EQ(EX_UNAVAILABLE, r->status);
	EXPECT_STREQ(want, r->err);
	run_eqctl(r, NULL, 0, hide_dev, ARGV("destroy", self->a));
	EXPECT_EQ(EX_UNAVAILABLE, r->status);
	run_eqctl(r, NULL, 0, hide_proc, ARGV("list"));
	EXPECT_EQ(EX_UNAVAILABLE, r->status);
	EXPECT_STREQ("eqctl: /proc/elasticq: open: No such file or directory "
		     "(is the elasticq module loaded?)\n", r->err);
}

TEST_HARNESS_MAIN
