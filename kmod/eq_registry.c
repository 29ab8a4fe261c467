// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The queues of the module.
 *
 * The default queue exists from load to unload and has no name.  Named
 * queues live in a list under eq_registry_lock from creation until DESTROY;
 * each bound file holds a reference, so a destroyed queue stays usable by
 * the files still bound to it (like an unlinked POSIX message queue) and is
 * freed by the last eq_queue_put().
 *
 * Limits, module parameters that root may change at any time:
 *   max_queues       named queues in existence, destroyed ones still bound
 *                    included (ENOSPC beyond)
 *   max_queue_bytes  largest max_bytes a queue may be configured with
 *   max_total_bytes  memory all queues together may hold: ring slots and
 *                    queued messages (ENOBUFS beyond)
 * Queue memory is also charged to the memory cgroup of whoever allocates
 * it (__GFP_ACCOUNT).
 *
 * Lock order: eq_registry_lock, then a queue's ring.lock.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/err.h>
#include <linux/fs_struct.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/string.h>

#include "eq_registry.h"

static uint max_queues = 64;
module_param(max_queues, uint, 0644);
MODULE_PARM_DESC(max_queues, "Most named queues at once (64)");

static unsigned long long max_queue_bytes = 64ULL << 20;
module_param(max_queue_bytes, ullong, 0644);
MODULE_PARM_DESC(max_queue_bytes, "Largest max_bytes of a queue (64 MiB)");

/* Charged by every ring; its limit is the max_total_bytes parameter. */
static struct eq_mem_budget eq_budget = {
	.used	= ATOMIC64_INIT(0),
	.limit	= 256ULL << 20,
};
module_param_named(max_total_bytes, eq_budget.limit, ullong, 0644);
MODULE_PARM_DESC(max_total_bytes,
		 "Most kernel memory all queues may hold (256 MiB)");

static DEFINE_MUTEX(eq_registry_lock);
/* Named queues; eq_registry_lock. */
static LIST_HEAD(eq_registry_list);
/* Named queues not yet freed; changed under eq_registry_lock or at free. */
static atomic_t eq_nr_queues = ATOMIC_INIT(0);

/* Set at init, before the device exists; fixed afterwards. */
static struct eq_queue *eq_default_queue;
static struct elasticq_config eq_defaults;

/**
 * eq_queue_get() - take a reference on a queue
 * @q: a queue the caller already holds a reference on
 */
void eq_queue_get(struct eq_queue *q)
{
	refcount_inc(&q->refs);
}

/**
 * eq_queue_put() - drop a reference; the last one frees the queue
 * @q: the queue
 */
void eq_queue_put(struct eq_queue *q)
{
	if (!refcount_dec_and_test(&q->refs))
		return;
	if (q->name[0])
		atomic_dec(&eq_nr_queues);
	eq_queue_destroy(q);
}

/**
 * eq_registry_default() - the default queue
 *
 * Return: the queue; it lives until the module is unloaded.
 */
struct eq_queue *eq_registry_default(void)
{
	return eq_default_queue;
}

/**
 * eq_registry_defaults() - the configuration of queues created without one
 * @cfg: filled in: the module parameters the default queue was made from
 */
void eq_registry_defaults(struct elasticq_config *cfg)
{
	*cfg = eq_defaults;
}

static int eq_registry_check_config(const struct elasticq_config *cfg)
{
	int ret = eq_config_validate(cfg);

	if (ret)
		return ret;
	return cfg->max_bytes > READ_ONCE(max_queue_bytes) ? -EINVAL : 0;
}

/* Not isalnum(): the kernel's also accepts Latin-1 letters. */
static bool eq_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/**
 * eq_registry_check_name() - is @name a valid queue name?
 * @name: ELASTICQ_NAME_SIZE bytes from userspace
 *
 * Return: 0 if it is 1..ELASTICQ_NAME_MAX bytes of [A-Za-z0-9._-] followed
 * by zeros only, -EINVAL otherwise.
 */
int eq_registry_check_name(const char *name)
{
	size_t len = strnlen(name, ELASTICQ_NAME_SIZE), i;

	if (!len || len > ELASTICQ_NAME_MAX)
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (!eq_name_char(name[i]))
			return -EINVAL;
	for (; i < ELASTICQ_NAME_SIZE; i++)
		if (name[i])
			return -EINVAL;
	return 0;
}

/* Caller holds eq_registry_lock. */
static struct eq_queue *eq_registry_find(const char *name)
{
	struct eq_queue *q;

	lockdep_assert_held(&eq_registry_lock);
	list_for_each_entry(q, &eq_registry_list, node)
		if (!strcmp(q->name, name))
			return q;
	return NULL;
}

/* May the current task open @q with @fmode?  As for files, mode bits. */
static int eq_queue_permission(const struct eq_queue *q, fmode_t fmode)
{
	umode_t mode = q->mode;
	int want = 0;

	if (fmode & FMODE_READ)
		want |= MAY_READ;
	if (fmode & FMODE_WRITE)
		want |= MAY_WRITE;
	if (uid_eq(current_fsuid(), q->uid))
		mode >>= 6;
	else if (in_group_p(q->gid))
		mode >>= 3;
	if (!(want & ~mode & (MAY_READ | MAY_WRITE)))
		return 0;
	return capable(CAP_DAC_OVERRIDE) ? 0 : -EACCES;
}

static bool eq_queue_owned(const struct eq_queue *q)
{
	return uid_eq(current_fsuid(), q->uid) || capable(CAP_SYS_ADMIN);
}

/* Make a named queue; caller holds eq_registry_lock. */
static struct eq_queue *eq_registry_create(const struct elasticq_attach *a,
					   const struct elasticq_config *cfg)
{
	struct eq_queue *q;

	lockdep_assert_held(&eq_registry_lock);
	if (atomic_read(&eq_nr_queues) >= READ_ONCE(max_queues))
		return ERR_PTR(-ENOSPC);
	q = eq_queue_create(cfg, &eq_budget);
	if (IS_ERR(q))
		return q;
	strscpy(q->name, a->name, sizeof(q->name));
	q->uid = current_fsuid();
	q->gid = current_fsgid();
	q->mode = a->mode & ~current_umask() & 0777;
	atomic_inc(&eq_nr_queues);
	list_add_tail(&q->node, &eq_registry_list);
	return q;
}

/**
 * eq_registry_attach() - find, or create, the queue a file binds to
 * @a:     the checked ATTACH argument (flags, mode, name valid)
 * @cfg:   with ELASTICQ_ATTACH_CREATE, the config of a new queue, or NULL
 *         for the defaults
 * @fmode: the file's mode: FMODE_READ needs read permission, FMODE_WRITE
 *         write permission
 *
 * Return: the queue with a reference for the caller, or ERR_PTR(): -ENOENT,
 * -EEXIST, -EACCES, -ENOSPC, -EINVAL (bad config), -ENOMEM, -ENOBUFS.
 */
struct eq_queue *eq_registry_attach(const struct elasticq_attach *a,
				    const struct elasticq_config *cfg,
				    fmode_t fmode)
{
	bool create = a->flags & ELASTICQ_ATTACH_CREATE;
	struct eq_queue *q;
	int ret;

	if (create) {
		if (!cfg)
			cfg = &eq_defaults;
		ret = eq_registry_check_config(cfg);
		if (ret)
			return ERR_PTR(ret);
	}
	mutex_lock(&eq_registry_lock);
	q = eq_registry_find(a->name);
	if (q && create && (a->flags & ELASTICQ_ATTACH_EXCL))
		q = ERR_PTR(-EEXIST);
	else if (!q && !create)
		q = ERR_PTR(-ENOENT);
	else if (!q)
		q = eq_registry_create(a, cfg);
	if (!IS_ERR(q))
		eq_queue_get(q);
	mutex_unlock(&eq_registry_lock);
	if (IS_ERR(q))
		return q;
	ret = eq_queue_permission(q, fmode);
	if (ret) {
		eq_queue_put(q);
		return ERR_PTR(ret);
	}
	return q;
}

/**
 * eq_registry_destroy() - remove a named queue
 * @d: the checked DESTROY argument
 *
 * Return: 0; -ENOENT if no queue has that name; -EPERM if the caller is
 * neither its owner nor CAP_SYS_ADMIN.
 */
int eq_registry_destroy(const struct elasticq_destroy *d)
{
	struct eq_queue *q;

	mutex_lock(&eq_registry_lock);
	q = eq_registry_find(d->name);
	if (!q) {
		mutex_unlock(&eq_registry_lock);
		return -ENOENT;
	}
	if (!eq_queue_owned(q)) {
		mutex_unlock(&eq_registry_lock);
		return -EPERM;
	}
	list_del_init(&q->node);
	mutex_unlock(&eq_registry_lock);
	eq_queue_put(q);
	return 0;
}

/**
 * eq_registry_may_configure() - may the caller reconfigure @q?
 * @q: the queue
 *
 * Return: true for CAP_SYS_ADMIN, and for the owner of a named queue.
 */
bool eq_registry_may_configure(const struct eq_queue *q)
{
	if (q == eq_default_queue)
		return capable(CAP_SYS_ADMIN);
	return eq_queue_owned(q);
}

/**
 * eq_registry_set_config() - reconfigure a queue within the module's limits
 * @q:   the queue; the caller checked eq_registry_may_configure()
 * @cfg: the new configuration
 *
 * Return: 0; -EINVAL (also for max_bytes above max_queue_bytes); otherwise
 * as eq_queue_set_config().
 */
int eq_registry_set_config(struct eq_queue *q,
			   const struct elasticq_config *cfg)
{
	int ret = eq_registry_check_config(cfg);

	if (ret)
		return ret;
	return eq_queue_set_config(q, cfg);
}

static const char *const eq_policy_names[] = {
	[ELASTICQ_FULL_BLOCK]		= "block",
	[ELASTICQ_FULL_REJECT]		= "reject",
	[ELASTICQ_FULL_DROP_OLDEST]	= "drop-oldest",
};

static void eq_registry_show_queue(struct seq_file *m, struct eq_queue *q)
{
	struct elasticq_config cfg;
	struct elasticq_stats st = {};

	eq_queue_get_config(q, &cfg);
	eq_queue_get_stats(q, &st);
	seq_printf(m, "%-24s %5u %5u %04o %-8s %-11s",
		   q->name[0] ? q->name : "(default)",
		   from_kuid_munged(seq_user_ns(m), q->uid),
		   from_kgid_munged(seq_user_ns(m), q->gid), q->mode,
		   eq_queue_lockfree(q) ? "lockfree" : "locked",
		   eq_policy_names[cfg.full_policy]);
	seq_printf(m, " %8llu %8llu %10llu %10llu %9llu %10llu %10llu %8llu %8llu %6llu %7llu %9u %9u\n",
		   st.len, st.capacity, st.bytes, st.mem_bytes, st.high_water,
		   st.enqueued, st.dequeued, st.dropped, st.rejected, st.grows,
		   st.shrinks, st.producers, st.consumers);
}

/**
 * eq_registry_show() - the text table of /proc/elasticq
 * @m: the seq_file
 * @v: unused
 *
 * Return: 0.
 */
int eq_registry_show(struct seq_file *m, void *v)
{
	struct eq_queue *q;

	seq_printf(m, "%-24s %5s %5s %4s %-8s %-11s %8s %8s %10s %10s %9s %10s %10s %8s %8s %6s %7s %9s %9s\n",
		   "NAME", "OWNER", "GROUP", "MODE", "VARIANT", "POLICY",
		   "LEN", "CAPACITY", "BYTES", "MEM", "HIGHWATER", "ENQUEUED",
		   "DEQUEUED", "DROPPED", "REJECTED", "GROWS", "SHRINKS",
		   "PRODUCERS", "CONSUMERS");
	mutex_lock(&eq_registry_lock);
	eq_registry_show_queue(m, eq_default_queue);
	list_for_each_entry(q, &eq_registry_list, node)
		eq_registry_show_queue(m, q);
	mutex_unlock(&eq_registry_lock);
	return 0;
}

/**
 * eq_registry_init() - create the default queue
 * @defaults: its configuration, also that of queues created without one
 * @mode:     its permission bits, as shown in /proc/elasticq (the device
 *            node's mode is what applies)
 *
 * Return: 0; -EINVAL if @defaults is invalid; -ENOMEM; -ENOBUFS.
 */
int eq_registry_init(const struct elasticq_config *defaults, umode_t mode)
{
	struct eq_queue *q;
	int ret;

	ret = eq_registry_check_config(defaults);
	if (ret)
		return ret;
	q = eq_queue_create(defaults, &eq_budget);
	if (IS_ERR(q))
		return PTR_ERR(q);
	q->uid = GLOBAL_ROOT_UID;
	q->gid = GLOBAL_ROOT_GID;
	q->mode = mode;
	eq_defaults = *defaults;
	eq_default_queue = q;
	return 0;
}

/**
 * eq_registry_exit() - free every queue
 *
 * No file may be open: each holds a reference on the module.
 */
void eq_registry_exit(void)
{
	struct eq_queue *q, *tmp;

	list_for_each_entry_safe(q, tmp, &eq_registry_list, node) {
		list_del_init(&q->node);
		eq_queue_put(q);
	}
	eq_queue_put(eq_default_queue);
	WARN_ON(atomic_read(&eq_nr_queues));
	WARN_ON(atomic64_read(&eq_budget.used));
}
