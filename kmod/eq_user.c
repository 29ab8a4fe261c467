// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Per-user limits, like POSIX message queues' RLIMIT_MSGQUEUE: every byte a
 * queue holds (its ring from creation on, and its messages) is charged to
 * the user that created the queue, and each user may create a bounded
 * number of queues.  The charge stays with the creator for the queue's
 * whole life, whoever pushes and whoever owns the queue later (as mqueue
 * charges the creator's ucounts whatever fchown() does).  Above the users
 * is the module-wide budget, which nobody may exceed.
 *
 * Limits, module parameters that root may change at any time:
 *   max_total_bytes  memory all queues together may hold (ENOBUFS beyond)
 *   max_user_bytes   memory the queues one user created may hold (EDQUOT
 *                    beyond; not for queues created with CAP_SYS_RESOURCE)
 *   max_user_queues  named queues one user may have created and not yet
 *                    freed (EDQUOT beyond; CAP_SYS_RESOURCE may exceed it)
 *   max_parked_per_user  io_uring commands one user's tasks may have
 *                    waiting (EDQUOT beyond; CAP_SYS_RESOURCE may exceed it)
 *
 * Locking: eq_users_lock protects the table and the lookup of a user; a
 * user's counters are atomics and need no lock.  It nests inside
 * eq_registry_lock and takes nothing else.
 */
#include <linux/capability.h>
#include <linux/hashtable.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "eq_user.h"

static u64 max_total_bytes = 256ULL << 20;
module_param(max_total_bytes, ullong, 0644);
MODULE_PARM_DESC(max_total_bytes,
		 "Most kernel memory all queues may hold (256 MiB)");

static u64 max_user_bytes = 32ULL << 20;
module_param(max_user_bytes, ullong, 0644);
MODULE_PARM_DESC(max_user_bytes,
		 "Most kernel memory the queues one user created may hold (32 MiB)");

static uint max_user_queues = 8;
module_param(max_user_queues, uint, 0644);
MODULE_PARM_DESC(max_user_queues, "Most named queues one user may create (8)");

static uint max_parked_per_user = 1024;
module_param(max_parked_per_user, uint, 0644);
MODULE_PARM_DESC(max_parked_per_user,
		 "io_uring commands one user may have waiting; more fail with EDQUOT unless CAP_SYS_RESOURCE (1024)");

/* Charged by every queue, through the budget of the user that made it. */
static struct eq_mem_budget eq_module_budget = {
	.used	= ATOMIC64_INIT(0),
	.limit	= &max_total_bytes,
	.over	= -ENOBUFS,
};

static DEFINE_SPINLOCK(eq_users_lock);
/* Users with at least one reference, by uid; eq_users_lock. */
static DEFINE_HASHTABLE(eq_users, 6);

/**
 * eq_user_module_budget() - the budget every user's budget is part of
 *
 * Return: the module-wide budget (max_total_bytes).
 */
struct eq_mem_budget *eq_user_module_budget(void)
{
	return &eq_module_budget;
}

static struct eq_user *eq_user_find(kuid_t uid)
{
	struct eq_user *u;

	lockdep_assert_held(&eq_users_lock);
	hash_for_each_possible(eq_users, u, node, __kuid_val(uid))
		if (uid_eq(u->uid, uid))
			return u;
	return NULL;
}

/**
 * eq_user_get() - the accounting of a user, created on first use
 * @uid: the user
 *
 * Return: the user with a reference for the caller, or NULL if out of
 * memory.
 */
struct eq_user *eq_user_get(kuid_t uid)
{
	struct eq_user *u, *fresh;

	fresh = kzalloc(sizeof(*fresh), GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	spin_lock(&eq_users_lock);
	u = eq_user_find(uid);
	if (u) {
		refcount_inc(&u->refs);
	} else if (fresh) {
		u = fresh;
		fresh = NULL;
		u->uid = uid;
		refcount_set(&u->refs, 1);
		atomic64_set(&u->budget.used, 0);
		u->budget.limit = &max_user_bytes;
		u->budget.parent = &eq_module_budget;
		u->budget.over = -EDQUOT;
		hash_add(eq_users, &u->node, __kuid_val(uid));
	}
	spin_unlock(&eq_users_lock);
	kfree(fresh);
	return u;
}

/**
 * eq_user_put() - drop a reference from eq_user_get()
 * @u: the user; freed with the last reference, when it holds nothing
 */
void eq_user_put(struct eq_user *u)
{
	/* Rare (a queue's end): the lock every time keeps sparse's view simple. */
	spin_lock(&eq_users_lock);
	if (!refcount_dec_and_test(&u->refs)) {
		spin_unlock(&eq_users_lock);
		return;
	}
	hash_del(&u->node);
	spin_unlock(&eq_users_lock);
	WARN_ON(atomic64_read(&u->budget.used) || atomic_read(&u->queues) ||
		atomic_read(&u->parked));
	kfree(u);
}

/**
 * eq_user_add_queue() - count a named queue the user creates
 * @u:          the user
 * @privileged: the creator has CAP_SYS_RESOURCE: max_user_queues does not
 *              apply
 *
 * Return: 0, or -EDQUOT with nothing counted.
 */
int eq_user_add_queue(struct eq_user *u, bool privileged)
{
	if (atomic_inc_return(&u->queues) <= READ_ONCE(max_user_queues) ||
	    privileged)
		return 0;
	atomic_dec(&u->queues);
	return -EDQUOT;
}

/**
 * eq_user_del_queue() - a queue counted by eq_user_add_queue() is freed
 * @u: the user
 */
void eq_user_del_queue(struct eq_user *u)
{
	atomic_dec(&u->queues);
}

/**
 * eq_user_add_parked() - count an io_uring command of the user that waits
 * @u: the user (the submitter)
 *
 * Return: 0, or -EDQUOT with nothing counted past max_parked_per_user,
 * unless the caller has CAP_SYS_RESOURCE (looked at only then).
 */
int eq_user_add_parked(struct eq_user *u)
{
	if (atomic_inc_return(&u->parked) <= READ_ONCE(max_parked_per_user) ||
	    capable(CAP_SYS_RESOURCE))
		return 0;
	atomic_dec(&u->parked);
	return -EDQUOT;
}

/**
 * eq_user_del_parked() - a command counted by eq_user_add_parked() ended
 * @u: the user
 */
void eq_user_del_parked(struct eq_user *u)
{
	atomic_dec(&u->parked);
}

/**
 * eq_user_exit() - check that nothing is charged any more, at unload
 */
void eq_user_exit(void)
{
	WARN_ON(!hash_empty(eq_users));
	WARN_ON(atomic64_read(&eq_module_budget.used));
}
