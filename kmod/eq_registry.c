// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The queues of the module, who may use them, and the limits on them.
 *
 * The default queue exists from load to unload and has no name.  Named
 * queues live in a list under eq_registry_lock from creation until DESTROY;
 * each bound file holds a reference, so a destroyed queue stays usable by
 * the files still bound to it (like an unlinked POSIX message queue) and is
 * freed by the last eq_queue_put().
 *
 * Every queue, the default one included, has an owner, a group and a mode,
 * checked like a file's: a file gets at ATTACH (for the default queue: at
 * open) the access its open mode asks for, if the queue's mode grants it.
 * The default queue starts as root's, mode 0662: anyone may produce, only
 * its owner and group may consume.  SET_OWNER changes them (like fchown()
 * and fchmod() on a message queue descriptor).
 *
 * Limits, module parameters that root may change at any time (the memory
 * limits are eq_user.c's):
 *   max_queues       named queues in existence, destroyed ones still bound
 *                    included (ENOSPC beyond)
 *   max_queue_bytes  largest max_bytes a queue may be configured with
 * Queue memory is also charged to the memory cgroup of whoever allocates
 * it (__GFP_ACCOUNT).
 *
 * Locking: eq_registry_lock protects the list of named queues, creation,
 * and changes of a queue's owner, group and mode; a queue's ident_lock
 * protects those three for readers that do not hold eq_registry_lock.
 * Order: eq_registry_lock, then ident_lock or eq_user.c's lock, or a
 * queue's ring.lock.
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
	if (q->name[0]) {
		atomic_dec(&eq_nr_queues);
		eq_user_del_queue(q->creator);
	}
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

/* A consistent copy of @q's owner, group and mode. */
static void eq_queue_ident(struct eq_queue *q, kuid_t *uid, kgid_t *gid,
			   umode_t *mode)
{
	spin_lock(&q->ident_lock);
	*uid = q->uid;
	*gid = q->gid;
	*mode = q->mode;
	spin_unlock(&q->ident_lock);
}

/* The owner's, the group's or the others' rw bits of @q's mode for us. */
static int eq_queue_mode_bits(struct eq_queue *q)
{
	umode_t mode;
	kuid_t uid;
	kgid_t gid;

	eq_queue_ident(q, &uid, &gid, &mode);
	if (uid_eq(current_fsuid(), uid))
		mode >>= 6;
	else if (in_group_p(gid))
		mode >>= 3;
	return mode & (MAY_READ | MAY_WRITE);
}

/**
 * eq_queue_access() - the access the queue's mode grants the current task
 * @q: the queue
 *
 * For a file that may never use the access (one opened only to ATTACH
 * elsewhere), so CAP_DAC_OVERRIDE is looked at without an audit record.
 *
 * Return: MAY_READ and MAY_WRITE bits, from the owner's, the group's or
 * the others' bits of the mode as for a file; both with CAP_DAC_OVERRIDE.
 */
int eq_queue_access(struct eq_queue *q)
{
	int bits = eq_queue_mode_bits(q);

	if (bits != (MAY_READ | MAY_WRITE) &&
	    ns_capable_noaudit(&init_user_ns, CAP_DAC_OVERRIDE))
		return MAY_READ | MAY_WRITE;
	return bits;
}

/**
 * eq_queue_want() - the access a file's open mode asks for
 * @fmode: the file's f_mode
 *
 * Return: MAY_READ for FMODE_READ, MAY_WRITE for FMODE_WRITE.
 */
int eq_queue_want(fmode_t fmode)
{
	return (fmode & FMODE_READ ? MAY_READ : 0) |
	       (fmode & FMODE_WRITE ? MAY_WRITE : 0);
}

/* As open(2): all of @want, or -EACCES (audited if only a capability helps). */
static int eq_queue_permission(struct eq_queue *q, int want)
{
	if (!(want & ~eq_queue_mode_bits(q)))
		return 0;
	return capable(CAP_DAC_OVERRIDE) ? 0 : -EACCES;
}

static kuid_t eq_queue_uid(struct eq_queue *q)
{
	umode_t mode;
	kuid_t uid;
	kgid_t gid;

	eq_queue_ident(q, &uid, &gid, &mode);
	return uid;
}

static bool eq_queue_owned(struct eq_queue *q)
{
	return uid_eq(current_fsuid(), eq_queue_uid(q)) ||
	       capable(CAP_SYS_ADMIN);
}

/*
 * Make a named queue, charged to the current user, not yet in the list;
 * caller holds eq_registry_lock.
 */
static struct eq_queue *eq_registry_create(const struct elasticq_attach *a,
					   const struct elasticq_config *cfg)
{
	bool privileged = ns_capable_noaudit(&init_user_ns, CAP_SYS_RESOURCE);
	struct eq_user *u;
	struct eq_queue *q;
	int ret;

	lockdep_assert_held(&eq_registry_lock);
	if (atomic_read(&eq_nr_queues) >= READ_ONCE(max_queues))
		return ERR_PTR(-ENOSPC);
	u = eq_user_get(current_fsuid());
	if (!u)
		return ERR_PTR(-ENOMEM);
	ret = eq_user_add_queue(u, privileged);
	if (ret) {
		eq_user_put(u);
		return ERR_PTR(ret);
	}
	q = eq_queue_create(cfg, u, privileged);
	if (IS_ERR(q)) {
		eq_user_del_queue(u);
		eq_user_put(u);
		return q;
	}
	strscpy(q->name, a->name, sizeof(q->name));
	q->uid = current_fsuid();
	q->gid = current_fsgid();
	q->mode = a->mode & ~current_umask() & 0777;
	atomic_inc(&eq_nr_queues);
	return q;
}

/**
 * eq_registry_attach() - find, or create, the queue a file binds to
 * @a:    the checked ATTACH argument (flags, mode, name valid)
 * @cfg:  with ELASTICQ_ATTACH_CREATE, the config of a new queue, or NULL
 *        for the defaults
 * @want: the access the file asks for (MAY_READ, MAY_WRITE; not 0)
 *
 * A queue this call creates but the caller may not use (a mode or umask
 * that denies @want) is freed again: a failed ATTACH changes nothing.
 *
 * Return: the queue with a reference for the caller, or ERR_PTR(): -ENOENT,
 * -EEXIST, -EACCES, -ENOSPC, -EDQUOT, -EINVAL (bad config), -ENOMEM,
 * -ENOBUFS.
 */
struct eq_queue *eq_registry_attach(const struct elasticq_attach *a,
				    const struct elasticq_config *cfg,
				    int want)
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
	if (q && create && (a->flags & ELASTICQ_ATTACH_EXCL)) {
		q = ERR_PTR(-EEXIST);
	} else if (q) {
		ret = eq_queue_permission(q, want);
		if (ret)
			q = ERR_PTR(ret);
		else
			eq_queue_get(q);
	} else if (!create) {
		q = ERR_PTR(-ENOENT);
	} else {
		q = eq_registry_create(a, cfg);
		if (!IS_ERR(q)) {
			ret = eq_queue_permission(q, want);
			if (ret) {
				eq_queue_put(q);
				q = ERR_PTR(ret);
			} else {
				/* One reference for the list, one for the file. */
				eq_queue_get(q);
				list_add_tail(&q->node, &eq_registry_list);
			}
		}
	}
	mutex_unlock(&eq_registry_lock);
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
 * Return: true for the queue's owner (root for the default queue, until
 * SET_OWNER gives it another) and for CAP_SYS_ADMIN.
 */
bool eq_registry_may_configure(struct eq_queue *q)
{
	return eq_queue_owned(q);
}

/**
 * eq_registry_get_owner() - a queue's owner, group and mode
 * @q: the queue
 * @o: filled in: @uid and @gid as the caller's user namespace sees them
 *     (the overflow ids if unmapped), @mode
 */
void eq_registry_get_owner(struct eq_queue *q, struct elasticq_owner *o)
{
	struct user_namespace *ns = current_user_ns();
	umode_t mode;
	kuid_t uid;
	kgid_t gid;

	eq_queue_ident(q, &uid, &gid, &mode);
	o->uid = from_kuid_munged(ns, uid);
	o->gid = from_kgid_munged(ns, gid);
	o->mode = mode;
}

/*
 * What chown(2) and chmod(2) allow (fs/attr.c): only CAP_CHOWN gives a
 * queue away; its owner may change its group to one of its own groups,
 * and its mode; CAP_CHOWN and CAP_FOWNER stand in for the owner.
 */
static int eq_owner_check(struct eq_queue *q, u32 what, kuid_t uid,
			  kgid_t gid)
{
	bool owner = uid_eq(current_fsuid(), q->uid);

	lockdep_assert_held(&eq_registry_lock);
	if ((what & ELASTICQ_OWNER_UID) && !uid_eq(uid, q->uid) &&
	    !capable(CAP_CHOWN))
		return -EPERM;
	if ((what & ELASTICQ_OWNER_GID) && !gid_eq(gid, q->gid) &&
	    !(owner && in_group_p(gid)) && !capable(CAP_CHOWN))
		return -EPERM;
	if ((what & (ELASTICQ_OWNER_UID | ELASTICQ_OWNER_GID)) && !owner &&
	    !capable(CAP_CHOWN))
		return -EPERM;
	if ((what & ELASTICQ_OWNER_MODE) && !owner && !capable(CAP_FOWNER))
		return -EPERM;
	return 0;
}

/**
 * eq_registry_set_owner() - change a queue's owner, group or mode
 * @q: the queue
 * @o: the checked SET_OWNER argument: @flags says which of @uid (in the
 *     caller's user namespace), @gid and @mode to change
 *
 * Files bound to the queue keep the access they got when they were bound,
 * as open files do after chmod(2).  The queue's memory stays charged to
 * the user that created it.
 *
 * Return: 0; -EINVAL if @uid or @gid has no mapping in the caller's user
 * namespace; -EPERM if the caller may not make the change.  Either error
 * changes nothing.
 */
int eq_registry_set_owner(struct eq_queue *q, const struct elasticq_owner *o)
{
	struct user_namespace *ns = current_user_ns();
	kuid_t uid = make_kuid(ns, o->uid);
	kgid_t gid = make_kgid(ns, o->gid);
	int ret;

	if (((o->flags & ELASTICQ_OWNER_UID) && !uid_valid(uid)) ||
	    ((o->flags & ELASTICQ_OWNER_GID) && !gid_valid(gid)))
		return -EINVAL;
	mutex_lock(&eq_registry_lock);
	ret = eq_owner_check(q, o->flags, uid, gid);
	if (!ret) {
		spin_lock(&q->ident_lock);
		if (o->flags & ELASTICQ_OWNER_UID)
			q->uid = uid;
		if (o->flags & ELASTICQ_OWNER_GID)
			q->gid = gid;
		if (o->flags & ELASTICQ_OWNER_MODE)
			q->mode = o->mode;
		spin_unlock(&q->ident_lock);
	}
	mutex_unlock(&eq_registry_lock);
	return ret;
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

/* Lists a queue only to those who may use it, its owner and CAP_SYS_ADMIN. */
static bool eq_registry_visible(struct eq_queue *q)
{
	return eq_queue_access(q) || uid_eq(current_fsuid(), eq_queue_uid(q)) ||
	       ns_capable_noaudit(&init_user_ns, CAP_SYS_ADMIN);
}

static void eq_registry_show_queue(struct seq_file *m, struct eq_queue *q)
{
	struct elasticq_config cfg;
	struct elasticq_stats st = {};
	umode_t mode;
	kuid_t uid;
	kgid_t gid;

	if (!eq_registry_visible(q))
		return;
	eq_queue_ident(q, &uid, &gid, &mode);
	eq_queue_get_config(q, &cfg);
	eq_queue_get_stats(q, &st);
	seq_printf(m, "%-24s %5u %5u %04o %-8s %-11s",
		   q->name[0] ? q->name : "(default)",
		   from_kuid_munged(seq_user_ns(m), uid),
		   from_kgid_munged(seq_user_ns(m), gid), mode,
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
 * Lists the queues the reader may use or owns (all for CAP_SYS_ADMIN).
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
 *
 * The default queue is root's, group root, mode 0662, and charged to root
 * (within max_total_bytes only).
 *
 * Return: 0; -EINVAL if @defaults is invalid; -ENOMEM; -ENOBUFS.
 */
int eq_registry_init(const struct elasticq_config *defaults)
{
	struct eq_user *root;
	struct eq_queue *q;
	int ret;

	ret = eq_registry_check_config(defaults);
	if (ret)
		return ret;
	root = eq_user_get(GLOBAL_ROOT_UID);
	if (!root)
		return -ENOMEM;
	q = eq_queue_create(defaults, root, true);
	if (IS_ERR(q)) {
		eq_user_put(root);
		return PTR_ERR(q);
	}
	q->uid = GLOBAL_ROOT_UID;
	q->gid = GLOBAL_ROOT_GID;
	q->mode = 0662;
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
	eq_user_exit();
}
