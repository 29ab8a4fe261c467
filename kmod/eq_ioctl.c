// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * ioctls of /dev/elasticq.  Every argument is an extensible struct whose
 * size is both encoded in the command and stored in its first field; the two
 * must agree.  Input is read with copy_struct_from_user() (a larger struct
 * from newer userspace is accepted if its unknown tail is zero); output is
 * built in a zeroed kernel struct and copied out, zero-extended to the
 * caller's size, so no kernel memory ever leaks.
 */
#include <linux/capability.h>
#include <linux/uaccess.h>

#include "eq_dev.h"

/* A command without its size bits: the struct size may vary, see above. */
#define EQ_IOC_SIZELESS(cmd)	((cmd) & ~(_IOC_SIZEMASK << _IOC_SIZESHIFT))

/* Read the struct at @arg into @dst (@ksize bytes) and check its size. */
static int eq_ioctl_copy_in(void *dst, size_t ksize, size_t ver0,
			    unsigned int cmd, void __user *arg)
{
	size_t usize = _IOC_SIZE(cmd);
	u32 size;
	int ret;

	if (usize < ver0)
		return -EINVAL;
	ret = copy_struct_from_user(dst, ksize, arg, usize);
	if (ret)
		return ret;
	memcpy(&size, dst, sizeof(size));
	return size == usize ? 0 : -EINVAL;
}

/* Copy @src out to @arg, zero-extended to the caller's size. */
static int eq_ioctl_copy_out(void __user *arg, void *src, size_t ksize,
			     unsigned int cmd)
{
	size_t usize = _IOC_SIZE(cmd);
	u32 size = min(usize, ksize);

	memcpy(src, &size, sizeof(size));
	if (copy_to_user(arg, src, size))
		return -EFAULT;
	if (usize > ksize && clear_user(arg + ksize, usize - ksize))
		return -EFAULT;
	return 0;
}

/*
 * The GET ioctls read only @size and @flags (the first 8 bytes) of the
 * caller's struct; the rest is output.
 */
static int eq_ioctl_get_head(unsigned int cmd, void __user *arg, size_t ver0)
{
	u32 head[2];

	if (_IOC_SIZE(cmd) < ver0)
		return -EINVAL;
	if (copy_from_user(head, arg, sizeof(head)))
		return -EFAULT;
	if (head[0] != _IOC_SIZE(cmd) || head[1])
		return -EINVAL;
	return 0;
}

static int eq_ioctl_get_stats(struct eq_queue *q, unsigned int cmd,
			      void __user *arg)
{
	struct elasticq_stats st = {};
	int ret;

	ret = eq_ioctl_get_head(cmd, arg, ELASTICQ_STATS_SIZE_VER0);
	if (ret)
		return ret;
	eq_queue_get_stats(q, &st);
	return eq_ioctl_copy_out(arg, &st, sizeof(st), cmd);
}

static int eq_ioctl_get_config(struct eq_queue *q, unsigned int cmd,
			       void __user *arg)
{
	struct elasticq_config cfg = {};
	int ret;

	ret = eq_ioctl_get_head(cmd, arg, ELASTICQ_CONFIG_SIZE_VER0);
	if (ret)
		return ret;
	eq_queue_get_config(q, &cfg);
	return eq_ioctl_copy_out(arg, &cfg, sizeof(cfg), cmd);
}

static int eq_ioctl_set_config(struct eq_queue *q, unsigned int cmd,
			       void __user *arg)
{
	struct elasticq_config cfg;
	int ret;

	/* The default queue belongs to whoever loaded the module: root. */
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = eq_ioctl_copy_in(&cfg, sizeof(cfg), ELASTICQ_CONFIG_SIZE_VER0,
			       cmd, arg);
	if (ret)
		return ret;
	return eq_queue_set_config(q, &cfg);
}

/**
 * eq_ioctl() - unlocked_ioctl of /dev/elasticq
 * @file: the file
 * @cmd:  ELASTICQ_IOC_*; any struct size from the first published one up
 * @arg:  user pointer to the command's struct
 *
 * Return: 0 or a negative errno; -ENOTTY for a command it does not know.
 */
long eq_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct eq_file *ef = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (EQ_IOC_SIZELESS(cmd)) {
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_GET_STATS):
		return eq_ioctl_get_stats(ef->queue, cmd, uarg);
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_GET_CONFIG):
		return eq_ioctl_get_config(ef->queue, cmd, uarg);
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_SET_CONFIG):
		return eq_ioctl_set_config(ef->queue, cmd, uarg);
	default:
		return -ENOTTY;
	}
}
