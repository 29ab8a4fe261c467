// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * /dev/elasticq: a misc device whose files read and write one queue.
 *
 * write(2)/writev(2) push one message per call, read(2) pops one.  The file
 * is a stream (no offsets) and sets FMODE_NOWAIT, honouring IOCB_NOWAIT, so
 * io_uring reads and writes go through poll instead of a worker thread.
 */
#include <linux/bitops.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "eq_dev.h"

/* Set once at registration, before the device can be opened. */
static struct eq_queue *eq_dev_default_queue;

static int eq_dev_open(struct inode *inode, struct file *file)
{
	struct eq_file *ef;
	int ret;

	ret = stream_open(inode, file);
	if (ret)
		return ret;
	ef = kzalloc(sizeof(*ef), GFP_KERNEL_ACCOUNT);
	if (!ef)
		return -ENOMEM;
	ef->queue = eq_dev_default_queue;
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
	kfree(ef);
	return 0;
}

static bool eq_dev_nonblock(struct kiocb *iocb)
{
	return (iocb->ki_filp->f_flags & O_NONBLOCK) ||
	       (iocb->ki_flags & IOCB_NOWAIT);
}

static ssize_t eq_dev_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct eq_file *ef = iocb->ki_filp->private_data;
	ssize_t ret;

	ret = eq_queue_push_iter(ef->queue, from, eq_dev_nonblock(iocb),
				 iocb->ki_flags & IOCB_NOWAIT);
	if (ret >= 0 && !test_and_set_bit(EQ_ROLE_PRODUCER, &ef->roles))
		atomic_inc(&ef->queue->producers);
	return ret;
}

static ssize_t eq_dev_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct eq_file *ef = iocb->ki_filp->private_data;

	/* The first read claims the consumer role, so `cat` just works. */
	if (!test_and_set_bit(EQ_ROLE_CONSUMER, &ef->roles))
		atomic_inc(&ef->queue->consumers);
	return eq_queue_pop_iter(ef->queue, to, eq_dev_nonblock(iocb),
				 iocb->ki_flags & IOCB_NOWAIT);
}

static __poll_t eq_dev_poll(struct file *file, poll_table *wait)
{
	struct eq_file *ef = file->private_data;

	return eq_queue_poll(ef->queue, file, wait);
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
};

static struct miscdevice eq_miscdev = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "elasticq",
	.fops	= &eq_dev_fops,
};

/**
 * eq_dev_register() - create /dev/elasticq
 * @default_queue: the queue every newly opened file is bound to
 * @mode:          permission bits of the device node
 *
 * Return: 0 or the error from misc_register().
 */
int eq_dev_register(struct eq_queue *default_queue, umode_t mode)
{
	eq_dev_default_queue = default_queue;
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
