// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * /dev/elasticq: a misc device whose files read and write one queue each.
 *
 * write(2)/writev(2) push one message per call, read(2) pops one.  The file
 * is a stream (no offsets) and sets FMODE_NOWAIT, honouring IOCB_NOWAIT, so
 * io_uring reads and writes go through poll instead of a worker thread.
 * A new file is bound to the default queue; ATTACH (eq_ioctl.c) may bind it
 * to a named queue once, before it is used.
 */
#include <linux/bitops.h>
#include <linux/err.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "eq_dev.h"
#include "eq_registry.h"

static int eq_dev_open(struct inode *inode, struct file *file)
{
	struct eq_file *ef;
	int ret;

	ret = stream_open(inode, file);
	if (ret)
		return ret;
	ef = kzalloc(sizeof(*ef), GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!ef)
		return -ENOMEM;
	mutex_init(&ef->lock);
	spin_lock_init(&ef->uring_lock);
	INIT_LIST_HEAD(&ef->uring_waits);
	ef->queue = eq_registry_default();
	eq_queue_get(ef->queue);
	file->private_data = ef;
	file->f_mode |= FMODE_NOWAIT;
	return 0;
}

static int eq_dev_release(struct inode *inode, struct file *file)
{
	struct eq_file *ef = file->private_data;

	if (test_bit(EQ_ROLE_PRODUCER, &ef->roles))
		atomic_dec(&ef->queue->producers);
	if (test_bit(EQ_ROLE_CONSUMER, &ef->roles))
		atomic_dec(&ef->queue->consumers);
	eq_queue_put(ef->queue);
	mutex_destroy(&ef->lock);
	kfree(ef);
	return 0;
}

/**
 * eq_file_claim() - take a role on the file's queue, if not yet held
 * @ef:   the file
 * @role: EQ_ROLE_PRODUCER or EQ_ROLE_CONSUMER
 *
 * A lock-free queue has one consumer at a time: the file that holds the
 * role keeps it until it is closed.
 *
 * Return: the queue the file is bound to, final from now on, or
 * ERR_PTR(-EBUSY) if another file is the lock-free queue's consumer.
 */
struct eq_queue *eq_file_claim(struct eq_file *ef, int role)
{
	struct eq_queue *q;

	if (test_bit(role, &ef->roles)) {
		/* Pairs with the full barrier of test_and_set_bit() below. */
		smp_rmb();
		return READ_ONCE(ef->queue);
	}
	mutex_lock(&ef->lock);
	q = ef->queue;
	if (test_bit(role, &ef->roles))
		goto out;
	if (role == EQ_ROLE_CONSUMER && eq_queue_lockfree(q)) {
		if (atomic_cmpxchg(&q->consumers, 0, 1)) {
			q = ERR_PTR(-EBUSY);
			goto out;
		}
	} else {
		atomic_inc(role == EQ_ROLE_PRODUCER ? &q->producers :
			   &q->consumers);
	}
	set_bit(role, &ef->roles);
out:
	mutex_unlock(&ef->lock);
	return q;
}

/**
 * eq_file_attach() - bind the file to a named queue
 * @ef:   the file's state
 * @file: the file (its f_mode decides the permission needed)
 * @a:    the checked ATTACH argument
 * @cfg:  config for a queue created by it, or NULL for the defaults
 *
 * Return: 0; -EBUSY if the file was attached or used already; otherwise
 * as eq_registry_attach().
 */
int eq_file_attach(struct eq_file *ef, struct file *file,
		   const struct elasticq_attach *a,
		   const struct elasticq_config *cfg)
{
	struct eq_queue *q, *old;
	int ret = 0;

	mutex_lock(&ef->lock);
	if (ef->attached || ef->roles) {
		ret = -EBUSY;
		goto out;
	}
	q = eq_registry_attach(a, cfg, file->f_mode);
	if (IS_ERR(q)) {
		ret = PTR_ERR(q);
		goto out;
	}
	old = ef->queue;
	WRITE_ONCE(ef->queue, q);
	ef->attached = true;
	/* Lockless readers of the old (default) queue are safe: it lives
	 * until the module goes, and the file pins the module.
	 */
	eq_queue_put(old);
out:
	mutex_unlock(&ef->lock);
	return ret;
}

static bool eq_dev_nonblock(struct kiocb *iocb)
{
	return (iocb->ki_filp->f_flags & O_NONBLOCK) ||
	       (iocb->ki_flags & IOCB_NOWAIT);
}

static ssize_t eq_dev_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct eq_queue *q = eq_file_claim(iocb->ki_filp->private_data,
					   EQ_ROLE_PRODUCER);

	if (IS_ERR(q))
		return PTR_ERR(q);
	return eq_queue_push_iter(q, from, eq_dev_nonblock(iocb),
				  iocb->ki_flags & IOCB_NOWAIT);
}

static ssize_t eq_dev_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	/* The first read claims the consumer role, so `cat` just works. */
	struct eq_queue *q = eq_file_claim(iocb->ki_filp->private_data,
					   EQ_ROLE_CONSUMER);

	if (IS_ERR(q))
		return PTR_ERR(q);
	return eq_queue_pop_iter(q, to, eq_dev_nonblock(iocb),
				 iocb->ki_flags & IOCB_NOWAIT);
}

static __poll_t eq_dev_poll(struct file *file, poll_table *wait)
{
	struct eq_file *ef = file->private_data;

	return eq_queue_poll(READ_ONCE(ef->queue), file, wait);
}

static const struct file_operations eq_dev_fops = {
	.owner		= THIS_MODULE,
	.open		= eq_dev_open,
	.release	= eq_dev_release,
	.read_iter	= eq_dev_read_iter,
	.write_iter	= eq_dev_write_iter,
	.poll		= eq_dev_poll,
	.unlocked_ioctl	= eq_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.uring_cmd	= eq_uring_cmd,
	.flush		= eq_uring_flush,
};

static struct miscdevice eq_miscdev = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "elasticq",
	.fops	= &eq_dev_fops,
};

/**
 * eq_dev_register() - create /dev/elasticq
 * @mode: permission bits of the device node
 *
 * Return: 0 or the error from misc_register().
 */
int eq_dev_register(umode_t mode)
{
	eq_miscdev.mode = mode;
	return misc_register(&eq_miscdev);
}

/**
 * eq_dev_unregister() - remove /dev/elasticq
 *
 * No file can be open: each holds a reference on the module.
 */
void eq_dev_unregister(void)
{
	misc_deregister(&eq_miscdev);
}
