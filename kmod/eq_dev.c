// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * /dev/elasticq: a misc device whose files read and write one queue each.
 *
 * write(2)/writev(2) push one message per call, read(2) pops one.  The file
 * is a stream (no offsets) and sets FMODE_NOWAIT, honouring IOCB_NOWAIT, so
 * io_uring reads and writes go through poll instead of a worker thread.
 * A new file is bound to the default queue, with the access its open mode
 * asks for that the default queue's mode grants; ATTACH (eq_ioctl.c) may
 * bind it to a named queue once, before it is used.  Opening never fails
 * for want of access: a file may be opened only to ATTACH.
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
	ef->may = eq_queue_want(file->f_mode) & eq_queue_access(ef->queue);
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
 * Return: the queue the file is bound to, final from now on;
 * ERR_PTR(-EACCES) if the file may not write (producer) or read (consumer)
 * its queue; ERR_PTR(-EBUSY) if another file is the lock-free queue's
 * consumer.
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
	if (!(ef->may & (role == EQ_ROLE_CONSUMER ? MAY_READ : MAY_WRITE))) {
		q = ERR_PTR(-EACCES);
		goto out;
	}
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
 * eq_file_queue() - the file's queue, for what needs some access to it
 * @ef: the file
 *
 * Without @lock: ATTACH may run at the same time; see eq_file_attach()
 * for the order of the stores this reads.
 *
 * Return: the queue, or ERR_PTR(-EACCES) if the file has neither read nor
 * write access to it.
 */
struct eq_queue *eq_file_queue(struct eq_file *ef)
{
	if (!READ_ONCE(ef->may))
		return ERR_PTR(-EACCES);
	/* @may before @queue: pairs with the second smp_wmb() of attach. */
	smp_rmb();
	return READ_ONCE(ef->queue);
}

/**
 * eq_file_attach() - bind the file to a named queue
 * @ef:   the file's state
 * @file: the file (its f_mode decides the permission needed)
 * @a:    the checked ATTACH argument
 * @cfg:  config for a queue created by it, or NULL for the defaults
 *
 * Return: 0; -EBADF if the file is open neither for reading nor for
 * writing; -EBUSY if the file was attached or used already; otherwise as
 * eq_registry_attach().
 */
int eq_file_attach(struct eq_file *ef, struct file *file,
		   const struct elasticq_attach *a,
		   const struct elasticq_config *cfg)
{
	int want = eq_queue_want(file->f_mode);
	struct eq_queue *q, *old;
	int ret = 0;

	if (!want)
		return -EBADF;
	mutex_lock(&ef->lock);
	if (ef->attached || ef->roles) {
		ret = -EBUSY;
		goto out;
	}
	q = eq_registry_attach(a, cfg, want);
	if (IS_ERR(q)) {
		ret = PTR_ERR(q);
		goto out;
	}
	old = ef->queue;
	/*
	 * eq_file_queue() reads @may, then @queue: whoever sees the new
	 * @may sees the new @queue, and the old @may never goes with the
	 * new @queue unless both grant some access.
	 */
	WRITE_ONCE(ef->may, 0);
	/* No access while @queue changes; eq_file_queue() may see either. */
	smp_wmb();
	WRITE_ONCE(ef->queue, q);
	/* The new @queue before the new @may: pairs with eq_file_queue(). */
	smp_wmb();
	WRITE_ONCE(ef->may, want);
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
	struct eq_queue *q = eq_file_queue(file->private_data);

	/* Readiness would tell its traffic to a file without access. */
	if (IS_ERR(q))
		return EPOLLERR;
	return eq_queue_poll(q, file, wait);
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

/*
 * Every queue checks its own permissions, as /dev/mqueue's files do, so
 * the node is open to all; a udev rule may narrow it (udev/).
 */
static struct miscdevice eq_miscdev = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "elasticq",
	.fops	= &eq_dev_fops,
	.mode	= 0666,
};

/**
 * eq_dev_register() - create /dev/elasticq
 *
 * Return: 0 or the error from misc_register().
 */
int eq_dev_register(void)
{
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
