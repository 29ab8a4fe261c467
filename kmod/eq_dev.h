/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The character device: what an open file of /dev/elasticq holds.
 */
#ifndef _EQ_DEV_H
#define _EQ_DEV_H

#include <linux/fs.h>

#include "eq_queue.h"

/* eq_file.roles bits */
#define EQ_ROLE_PRODUCER	0	/* counted in queue->producers */
#define EQ_ROLE_CONSUMER	1	/* counted in queue->consumers */

/**
 * struct eq_file - per open file state (file->private_data)
 * @queue:	the queue the file is bound to, for the life of the file
 * @roles:	EQ_ROLE_* bits, set once (test_and_set_bit), cleared at release
 */
struct eq_file {
	struct eq_queue *queue;
	unsigned long roles;
};

int eq_dev_register(struct eq_queue *default_queue, umode_t mode);
void eq_dev_unregister(void);

long eq_ioctl(struct file *file, unsigned int cmd, unsigned long arg);

#endif /* _EQ_DEV_H */
