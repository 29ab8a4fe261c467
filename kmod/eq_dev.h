/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The character device: what an open file of /dev/elasticq holds.
 */
#ifndef _EQ_DEV_H
#define _EQ_DEV_H

#include <linux/fs.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>

#include "eq_queue.h"

/* A command without its size bits: the struct size may vary (eq_ioctl.c). */
#define EQ_IOC_SIZELESS(cmd)	((cmd) & ~(_IOC_SIZEMASK << _IOC_SIZESHIFT))

/* eq_file.roles bits */
#define EQ_ROLE_PRODUCER	0	/* counted in queue->producers */
#define EQ_ROLE_CONSUMER	1	/* counted in queue->consumers */

/**
 * struct eq_file - per open file state (file->private_data)
 * @lock:	serialises binding (ATTACH) and the first claim of each role
 * @queue:	the queue the file is bound to, with a reference.  Starts as
 *		the default queue and changes at most once, by ATTACH under
 *		@lock, and only while @roles is 0; so once a role bit is set
 *		it is final and may be read without @lock (READ_ONCE)
 * @roles:	EQ_ROLE_* bits, set under @lock, never cleared
 * @may:	MAY_READ and MAY_WRITE: the access the file has to @queue,
 *		what its open mode asked for and the queue's mode granted
 *		(at open for the default queue, at ATTACH for a named one).
 *		Written under @lock, read without it by eq_file_queue()
 * @attached:	ATTACH was done; under @lock
 * @uring_lock:	protects @uring_waits
 * @uring_waits: the io_uring commands parked on this file (eq_uring.c),
 *		so that closing a file looks at its own commands only
 */
struct eq_file {
	struct mutex lock;		/* see above */
	struct eq_queue *queue;
	unsigned long roles;
	int may;
	bool attached;
	spinlock_t uring_lock;		/* see above */
	struct list_head uring_waits;
};

int eq_dev_register(void);
void eq_dev_unregister(void);

struct eq_queue *eq_file_claim(struct eq_file *ef, int role);
struct eq_queue *eq_file_queue(struct eq_file *ef);
int eq_file_attach(struct eq_file *ef, struct file *file,
		   const struct elasticq_attach *a,
		   const struct elasticq_config *cfg);

long eq_ioctl(struct file *file, unsigned int cmd, unsigned long arg);
int eq_push_batch_args(struct file *file, unsigned int cmd, void __user *arg,
		       struct elasticq_push_batch *b);
int eq_pop_batch_args(struct file *file, unsigned int cmd, void __user *arg,
		      struct elasticq_pop_batch *b);
bool eq_batch_nonblock(struct file *file, u32 flags);

/* io_uring commands (eq_uring.c) */
struct io_uring_cmd;
int eq_uring_cmd(struct io_uring_cmd *cmd, unsigned int issue_flags);
int eq_uring_flush(struct file *file, fl_owner_t owner);
void eq_uring_exit(void);

#endif /* _EQ_DEV_H */
