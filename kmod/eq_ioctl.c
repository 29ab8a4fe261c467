// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * ioctls of /dev/elasticq.  Every argument is an extensible struct whose
 * size is both encoded in the command and stored in its first field; the two
 * must agree.  Input is read with copy_struct_from_user() (a larger struct
 * from newer userspace is accepted if its unknown tail is zero); output is
 * built in a zeroed kernel struct and copied out, zero-extended to the
 * caller's size, so no kernel memory ever leaks.
 */
#include <linux/uaccess.h>

#include "eq_batch.h"
#include "eq_dev.h"
#include "eq_registry.h"

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

	/* Who may comes first: others learn nothing from the argument. */
	if (!eq_registry_may_configure(q))
		return -EPERM;
	ret = eq_ioctl_copy_in(&cfg, sizeof(cfg), ELASTICQ_CONFIG_SIZE_VER0,
			       cmd, arg);
	if (ret)
		return ret;
	return eq_registry_set_config(q, &cfg);
}

static bool eq_all_zero(const void *p, size_t len)
{
	return !memchr_inv(p, 0, len);
}

/*
 * A config passed by pointer: its own first field says how large it is.
 * Sizes beyond 4096 bytes are refused (E2BIG) rather than scanned, as
 * clone3() does beyond a page.
 */
static int eq_ioctl_copy_config(struct elasticq_config *cfg, u64 uptr)
{
	void __user *arg = u64_to_user_ptr(uptr);
	u32 usize;
	int ret;

	if (get_user(usize, (u32 __user *)arg))
		return -EFAULT;
	if (usize < ELASTICQ_CONFIG_SIZE_VER0)
		return -EINVAL;
	if (usize > 4096)
		return -E2BIG;
	ret = copy_struct_from_user(cfg, sizeof(*cfg), arg, usize);
	if (ret)
		return ret;
	cfg->size = sizeof(*cfg);
	return 0;
}

static int eq_ioctl_attach(struct file *file, unsigned int cmd,
			   void __user *arg)
{
	bool create;
	struct elasticq_attach a;
	struct elasticq_config cfg;
	int ret;

	ret = eq_ioctl_copy_in(&a, sizeof(a), ELASTICQ_ATTACH_SIZE_VER0, cmd,
			       arg);
	if (ret)
		return ret;
	create = a.flags & ELASTICQ_ATTACH_CREATE;
	if (a.flags & ~(ELASTICQ_ATTACH_CREATE | ELASTICQ_ATTACH_EXCL) ||
	    ((a.flags & ELASTICQ_ATTACH_EXCL) && !create) ||
	    a.mode > 0777 || (!create && (a.mode || a.config)) ||
	    a.reserved0 || !eq_all_zero(a.reserved, sizeof(a.reserved)))
		return -EINVAL;
	ret = eq_registry_check_name(a.name);
	if (ret)
		return ret;
	if (a.config) {
		ret = eq_ioctl_copy_config(&cfg, a.config);
		if (ret)
			return ret;
	}
	return eq_file_attach(file->private_data, file, &a,
			      a.config ? &cfg : NULL);
}

static int eq_ioctl_get_owner(struct eq_queue *q, unsigned int cmd,
			      void __user *arg)
{
	struct elasticq_owner o = {};
	int ret;

	ret = eq_ioctl_get_head(cmd, arg, ELASTICQ_OWNER_SIZE_VER0);
	if (ret)
		return ret;
	eq_registry_get_owner(q, &o);
	return eq_ioctl_copy_out(arg, &o, sizeof(o), cmd);
}

#define EQ_OWNER_FLAGS	(ELASTICQ_OWNER_UID | ELASTICQ_OWNER_GID | \
			 ELASTICQ_OWNER_MODE)

static int eq_ioctl_set_owner(struct eq_queue *q, unsigned int cmd,
			      void __user *arg)
{
	struct elasticq_owner o;
	int ret;

	ret = eq_ioctl_copy_in(&o, sizeof(o), ELASTICQ_OWNER_SIZE_VER0, cmd,
			       arg);
	if (ret)
		return ret;
	if (!o.flags || (o.flags & ~EQ_OWNER_FLAGS) || o.reserved0 ||
	    !eq_all_zero(o.reserved, sizeof(o.reserved)) ||
	    (!(o.flags & ELASTICQ_OWNER_UID) && o.uid) ||
	    (!(o.flags & ELASTICQ_OWNER_GID) && o.gid) ||
	    (!(o.flags & ELASTICQ_OWNER_MODE) && o.mode) || o.mode > 0777)
		return -EINVAL;
	return eq_registry_set_owner(q, &o);
}

static int eq_ioctl_destroy(unsigned int cmd, void __user *arg)
{
	struct elasticq_destroy d;
	int ret;

	ret = eq_ioctl_copy_in(&d, sizeof(d), ELASTICQ_DESTROY_SIZE_VER0, cmd,
			       arg);
	if (ret)
		return ret;
	if (d.flags || !eq_all_zero(d.reserved, sizeof(d.reserved)))
		return -EINVAL;
	ret = eq_registry_check_name(d.name);
	if (ret)
		return ret;
	return eq_registry_destroy(&d);
}

static int eq_ioctl_consume(struct file *file, unsigned long arg)
{
	if (arg)
		return -EINVAL;
	if (!(file->f_mode & FMODE_READ))
		return -EBADF;
	return PTR_ERR_OR_ZERO(eq_file_claim(file->private_data,
					     EQ_ROLE_CONSUMER));
}

#define EQ_BATCH_FLAGS	(ELASTICQ_BATCH_NONBLOCK | ELASTICQ_BATCH_TIMEOUT)

/* The flags and timeout rules both batch structs share. */
static bool eq_batch_flags_ok(u32 flags, u64 timeout_ns)
{
	return !(flags & ~EQ_BATCH_FLAGS) &&
	       (!timeout_ns || (flags & ELASTICQ_BATCH_TIMEOUT));
}

/**
 * eq_batch_nonblock() - whether a batch must not sleep
 * @file:  the file
 * @flags: the batch's ELASTICQ_BATCH_* flags
 *
 * Return: true with O_NONBLOCK or ELASTICQ_BATCH_NONBLOCK.
 */
bool eq_batch_nonblock(struct file *file, u32 flags)
{
	return (file->f_flags & O_NONBLOCK) || (flags & ELASTICQ_BATCH_NONBLOCK);
}

/**
 * eq_push_batch_args() - read and check the argument of a push batch
 * @file: the file
 * @cmd:  ELASTICQ_IOC_PUSH_BATCH, of any struct size from the first one up
 * @arg:  user pointer to the struct
 * @b:    receives it
 *
 * Shared by the ioctl and the io_uring command.  @arg's @error is zeroed
 * here: where the outcome goes must be writable before anything is done.
 *
 * Return: 0, -EINVAL, -EFAULT, -E2BIG, or -EBADF if @file is not open for
 * writing.
 */
int eq_push_batch_args(struct file *file, unsigned int cmd, void __user *arg,
		       struct elasticq_push_batch *b)
{
	struct elasticq_push_batch __user *ub = arg;
	int ret;

	ret = eq_ioctl_copy_in(b, sizeof(*b), ELASTICQ_PUSH_BATCH_SIZE_VER0,
			       cmd, arg);
	if (ret)
		return ret;
	if (!eq_batch_flags_ok(b->flags, b->timeout_ns) ||
	    b->count > ELASTICQ_BATCH_MAX ||
	    !eq_all_zero(b->reserved, sizeof(b->reserved)))
		return -EINVAL;
	if (!(file->f_mode & FMODE_WRITE))
		return -EBADF;
	if (put_user(0, &ub->error))
		return -EFAULT;
	return 0;
}

/**
 * eq_pop_batch_args() - read and check the argument of a pop batch
 * @file: the file
 * @cmd:  ELASTICQ_IOC_POP_BATCH, of any struct size from the first one up
 * @arg:  user pointer to the struct
 * @b:    receives it
 *
 * As eq_push_batch_args(), for @bytes; -EBADF if not open for reading.
 *
 * Return: 0 or -errno.
 */
int eq_pop_batch_args(struct file *file, unsigned int cmd, void __user *arg,
		      struct elasticq_pop_batch *b)
{
	struct elasticq_pop_batch __user *ub = arg;
	int ret;

	ret = eq_ioctl_copy_in(b, sizeof(*b), ELASTICQ_POP_BATCH_SIZE_VER0,
			       cmd, arg);
	if (ret)
		return ret;
	if (!eq_batch_flags_ok(b->flags, b->timeout_ns) || !b->max_msgs ||
	    b->max_msgs > ELASTICQ_BATCH_MAX || b->reserved0 ||
	    !eq_all_zero(b->reserved, sizeof(b->reserved)))
		return -EINVAL;
	if (!(file->f_mode & FMODE_READ))
		return -EBADF;
	/* Delivered messages must not be lost to an unwritable @bytes. */
	if (put_user(0, &ub->bytes))
		return -EFAULT;
	return 0;
}

static long eq_ioctl_push_batch(struct file *file, unsigned int cmd,
				void __user *arg)
{
	struct elasticq_push_batch __user *ub = arg;
	struct elasticq_push_batch b;
	struct eq_queue *q;
	long ret;

	ret = eq_push_batch_args(file, cmd, arg, &b);
	if (ret || !b.count)
		return ret;
	q = eq_file_claim(file->private_data, EQ_ROLE_PRODUCER);
	if (IS_ERR(q))
		return PTR_ERR(q);
	ret = eq_batch_push(q, &b, eq_batch_nonblock(file, b.flags), false);
	if (put_user(b.error, &ub->error) && ret < 0)
		return -EFAULT;
	return ret;
}

static long eq_ioctl_pop_batch(struct file *file, unsigned int cmd,
			       void __user *arg)
{
	struct elasticq_pop_batch __user *ub = arg;
	struct elasticq_pop_batch b;
	struct eq_queue *q;
	long ret;

	ret = eq_pop_batch_args(file, cmd, arg, &b);
	if (ret)
		return ret;
	q = eq_file_claim(file->private_data, EQ_ROLE_CONSUMER);
	if (IS_ERR(q))
		return PTR_ERR(q);
	ret = eq_batch_pop(q, &b, eq_batch_nonblock(file, b.flags), false);
	if (ret > 0 && put_user(b.bytes, &ub->bytes))
		return ret;	/* the frames are there; the count is right */
	return ret;
}

/**
 * eq_ioctl() - unlocked_ioctl of /dev/elasticq
 * @file: the file
 * @cmd:  ELASTICQ_IOC_*; any struct size from the first published one up
 * @arg:  user pointer to the command's struct
 *
 * Return: 0, a count for the batch commands, or a negative errno; -ENOTTY
 * for a command it does not know; -EACCES for one that needs access to
 * the file's queue when the file has none.
 */
long eq_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct eq_file *ef = file->private_data;
	void __user *uarg = (void __user *)arg;
	struct eq_queue *q;

	if (cmd == ELASTICQ_IOC_CONSUME)
		return eq_ioctl_consume(file, arg);
	switch (EQ_IOC_SIZELESS(cmd)) {
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_ATTACH):
		return eq_ioctl_attach(file, cmd, uarg);
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_DESTROY):
		return eq_ioctl_destroy(cmd, uarg);
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_PUSH_BATCH):
		return eq_ioctl_push_batch(file, cmd, uarg);
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_POP_BATCH):
		return eq_ioctl_pop_batch(file, cmd, uarg);
	}
	/* The rest need read or write access to the file's queue. */
	switch (EQ_IOC_SIZELESS(cmd)) {
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_GET_STATS):
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_GET_CONFIG):
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_SET_CONFIG):
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_GET_OWNER):
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_SET_OWNER):
		break;
	default:
		return -ENOTTY;
	}
	q = eq_file_queue(ef);
	if (IS_ERR(q))
		return PTR_ERR(q);
	switch (EQ_IOC_SIZELESS(cmd)) {
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_GET_STATS):
		return eq_ioctl_get_stats(q, cmd, uarg);
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_GET_CONFIG):
		return eq_ioctl_get_config(q, cmd, uarg);
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_SET_CONFIG):
		return eq_ioctl_set_config(q, cmd, uarg);
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_GET_OWNER):
		return eq_ioctl_get_owner(q, cmd, uarg);
	default:
		return eq_ioctl_set_owner(q, cmd, uarg);
	}
}
