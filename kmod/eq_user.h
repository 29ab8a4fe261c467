/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Who pays for a queue: the user that created it (eq_user.c).  Each user
 * has a memory budget under the module-wide one and a count of the queues
 * it created; both have limits that root may change at any time.
 */
#ifndef _EQ_USER_H
#define _EQ_USER_H

#include <linux/atomic.h>
#include <linux/refcount.h>
#include <linux/types.h>
#include <linux/uidgid.h>

#include "eq_ring.h"

/**
 * struct eq_user - what one user's queues hold
 * @node:	in the table of users, under its lock
 * @uid:	the user
 * @refs:	one per queue the user created, and one per eq_user_get()
 * @budget:	memory of every queue the user created (rings and
 *		messages), within max_user_bytes; its parent is the
 *		module-wide budget
 * @queues:	named queues the user created that are not yet freed
 * @parked:	io_uring commands the user's tasks have waiting
 */
struct eq_user {
	struct hlist_node node;
	kuid_t uid;
	refcount_t refs;
	struct eq_mem_budget budget;
	atomic_t queues;
	atomic_t parked;
};

struct eq_user *eq_user_get(kuid_t uid);
void eq_user_put(struct eq_user *u);
int eq_user_add_queue(struct eq_user *u, bool privileged);
void eq_user_del_queue(struct eq_user *u);
int eq_user_add_parked(struct eq_user *u);
void eq_user_del_parked(struct eq_user *u);
struct eq_mem_budget *eq_user_module_budget(void);
void eq_user_exit(void);

#endif /* _EQ_USER_H */
