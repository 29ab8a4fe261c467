// SPDX-License-Identifier: MIT
/*
 * libelasticq: thin wrappers over the ioctls of <linux/elasticq.h>, a frame
 * iterator for pop batches and an io_uring batch consumer.  Every function
 * turns errno into a negative return value right where the system call
 * fails, so callers never look at errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <liburing.h>

#include "libelasticq.h"

/* Batches up to this many messages convert their iovecs on the stack. */
#define STACK_VECS	64

/*
 * user_data of the consumer's SQEs: a tag in the high half, the batch
 * index in the low half, so that a completion from someone else's request
 * on the same ring is recognised instead of misread as a batch.
 */
#define CONSUMER_TAG	0x6571636fULL	/* "eqco" */
#define CONSUMER_DEPTH_MAX 64

/* Copy a queue name into a zeroed ATTACH/DESTROY name field. */
static int copy_name(char dst[ELASTICQ_NAME_SIZE], const char *name)
{
	size_t len = strnlen(name, ELASTICQ_NAME_SIZE);

	/* The kernel checks the characters; the length must fit first. */
	if (len == 0 || len > ELASTICQ_NAME_MAX)
		return -EINVAL;
	memset(dst, 0, ELASTICQ_NAME_SIZE);
	memcpy(dst, name, len);
	return 0;
}

int elasticq_open(const char *name, int oflags, unsigned int aflags,
		  unsigned int mode, const struct elasticq_config *cfg)
{
	struct elasticq_config sized;
	struct elasticq_attach a;
	int fd, err;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.flags = aflags;
	if (name && *name) {
		err = copy_name(a.name, name);
		if (err)
			return err;
	} else if (aflags) {
		return -EINVAL;	/* the default queue is neither made nor found */
	}
	/* Like open(2), mode and config only mean something with CREATE. */
	if (aflags & ELASTICQ_ATTACH_CREATE) {
		a.mode = mode;
		if (cfg && !cfg->size) {
			sized = *cfg;
			sized.size = sizeof(sized);
			cfg = &sized;
		}
		a.config = (uintptr_t)cfg;
	}

	fd = open(ELASTICQ_DEVICE_PATH, oflags | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (a.name[0] && ioctl(fd, ELASTICQ_IOC_ATTACH, &a)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int elasticq_destroy(const char *name)
{
	struct elasticq_destroy d;
	int fd, ret;

	memset(&d, 0, sizeof(d));
	d.size = sizeof(d);
	ret = copy_name(d.name, name ? name : "");
	if (ret)
		return ret;
	fd = open(ELASTICQ_DEVICE_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = ioctl(fd, ELASTICQ_IOC_DESTROY, &d) ? -errno : 0;
	close(fd);
	return ret;
}

int elasticq_default_config(struct elasticq_config *cfg)
{
	/* Read-only: opening does not claim the consumer role, popping does. */
	int fd = elasticq_open(NULL, O_RDONLY, 0, 0, NULL), ret;

	if (fd < 0)
		return fd;
	ret = elasticq_get_config(fd, cfg);
	close(fd);
	return ret;
}

int elasticq_get_config(int fd, struct elasticq_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	return ioctl(fd, ELASTICQ_IOC_GET_CONFIG, cfg) ? -errno : 0;
}

int elasticq_set_config(int fd, const struct elasticq_config *cfg)
{
	struct elasticq_config sized;

	if (!cfg->size) {
		sized = *cfg;
		sized.size = sizeof(sized);
		cfg = &sized;
	}
	return ioctl(fd, ELASTICQ_IOC_SET_CONFIG, cfg) ? -errno : 0;
}

int elasticq_get_stats(int fd, struct elasticq_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	return ioctl(fd, ELASTICQ_IOC_GET_STATS, st) ? -errno : 0;
}

int elasticq_get_owner(int fd, struct elasticq_owner *o)
{
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	return ioctl(fd, ELASTICQ_IOC_GET_OWNER, o) ? -errno : 0;
}

int elasticq_set_owner(int fd, unsigned int flags, uid_t uid, gid_t gid,
		       mode_t mode)
{
	struct elasticq_owner o;

	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.flags = flags;
	if (flags & ELASTICQ_OWNER_UID)
		o.uid = uid;
	if (flags & ELASTICQ_OWNER_GID)
		o.gid = gid;
	if (flags & ELASTICQ_OWNER_MODE)
		o.mode = mode;
	return ioctl(fd, ELASTICQ_IOC_SET_OWNER, &o) ? -errno : 0;
}

int elasticq_consume(int fd)
{
	return ioctl(fd, ELASTICQ_IOC_CONSUME, 0) ? -errno : 0;
}

int elasticq_push(int fd, const void *msg, size_t len)
{
	/* One write is one message, all or nothing: no short-write loop. */
	return write(fd, msg, len) < 0 ? -errno : 0;
}

ssize_t elasticq_pop(int fd, void *buf, size_t size)
{
	ssize_t n = read(fd, buf, size);

	return n < 0 ? -errno : n;
}

int elasticq_push_batch(int fd, const struct iovec *msgs, unsigned int count,
			unsigned int flags, uint64_t timeout_ns, int *error)
{
	struct elasticq_msg_vec stack[STACK_VECS], *v = stack;
	struct elasticq_push_batch b;
	unsigned int i;
	int ret;

	if (count > ELASTICQ_BATCH_MAX) {
		ret = -EINVAL;
		goto out;
	}
	if (count > STACK_VECS) {
		v = malloc(count * sizeof(*v));
		if (!v) {
			ret = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < count; i++) {
		v[i].addr = (uintptr_t)msgs[i].iov_base;
		v[i].len = msgs[i].iov_len;
	}
	memset(&b, 0, sizeof(b));
	b.size = sizeof(b);
	b.flags = flags;
	b.msgs = (uintptr_t)v;
	b.count = count;
	b.timeout_ns = timeout_ns;
	ret = ioctl(fd, ELASTICQ_IOC_PUSH_BATCH, &b);
	if (ret < 0)
		ret = -errno;
	if (v != stack)
		free(v);
	/* A failed ioctl may not have got as far as filling b.error. */
	if (error)
		*error = ret < 0 ? ret : b.error;
	return ret;
out:
	if (error)
		*error = ret;
	return ret;
}

int elasticq_pop_batch(int fd, void *buf, size_t size, unsigned int max_msgs,
		       unsigned int flags, uint64_t timeout_ns, size_t *bytes)
{
	struct elasticq_pop_batch b;
	int ret;

	memset(&b, 0, sizeof(b));
	b.size = sizeof(b);
	b.flags = flags;
	b.buf = (uintptr_t)buf;
	b.buf_len = size;
	b.max_msgs = max_msgs;
	b.timeout_ns = timeout_ns;
	ret = ioctl(fd, ELASTICQ_IOC_POP_BATCH, &b);
	if (ret < 0)
		ret = -errno;
	if (bytes)
		*bytes = ret < 0 ? 0 : b.bytes;
	return ret;
}

void elasticq_frames_init(struct elasticq_frame_iter *it, const void *buf,
			  size_t bytes)
{
	it->pos = buf;
	it->end = it->pos + bytes;
}

const void *elasticq_frames_next(struct elasticq_frame_iter *it,
				 uint32_t *len)
{
	size_t left = it->end - it->pos;
	struct elasticq_frame f;
	const void *payload;

	if (left < sizeof(f))
		return NULL;
	/* The caller's buffer need not be 8-byte aligned: copy the header. */
	memcpy(&f, it->pos, sizeof(f));
	if (f.len > left - sizeof(f)) {
		it->pos = it->end;	/* malformed or cut short: stop for good */
		return NULL;
	}
	payload = it->pos + sizeof(f);
	/* The last frame's padding may lie beyond what was filled. */
	it->pos = ELASTICQ_FRAME_SIZE(f.len) < left ?
		  it->pos + ELASTICQ_FRAME_SIZE(f.len) : it->end;
	*len = f.len;
	return payload;
}

const char *elasticq_strerror(int err)
{
	return strerror(err < 0 ? -err : err);
}

/* An IORING_OP_URING_CMD running ioctl @op with argument @arg on @fd. */
static void prep_cmd(struct io_uring_sqe *sqe, int fd, uint32_t op,
		     void *arg)
{
	struct elasticq_uring_cmd cmd = { .arg = (uintptr_t)arg };

	/* liburing 2.3 has no io_uring_prep_cmd(): off and addr3 carry it. */
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = op;
	memcpy(sqe->cmd, &cmd, sizeof(cmd));
}

void elasticq_prep_pop_batch(struct io_uring_sqe *sqe, int fd,
			     struct elasticq_pop_batch *b)
{
	prep_cmd(sqe, fd, ELASTICQ_IOC_POP_BATCH, b);
}

void elasticq_prep_push_batch(struct io_uring_sqe *sqe, int fd,
			      struct elasticq_push_batch *b)
{
	prep_cmd(sqe, fd, ELASTICQ_IOC_PUSH_BATCH, b);
}

/* Queue batch @i of @c on its ring (not submitted yet); 0 or -EBUSY. */
static int consumer_queue(struct elasticq_uring_consumer *c, unsigned int i)
{
	struct elasticq_pop_batch *b = &c->batches[i];
	struct io_uring_sqe *sqe = io_uring_get_sqe(c->ring);

	if (!sqe)
		return -EBUSY;
	memset(b, 0, sizeof(*b));
	b->size = sizeof(*b);
	b->buf = (uintptr_t)(c->bufs + (size_t)i * c->buf_size);
	b->buf_len = c->buf_size;
	b->max_msgs = c->max_msgs;
	elasticq_prep_pop_batch(sqe, c->fd, b);
	sqe->user_data = CONSUMER_TAG << 32 | i;
	return 0;
}

int elasticq_uring_consumer_init(struct elasticq_uring_consumer *c,
				 struct io_uring *ring, int fd,
				 unsigned int depth, unsigned int max_msgs,
				 size_t buf_size)
{
	unsigned int i;
	void *bufs;
	int ret;

	memset(c, 0, sizeof(*c));
	c->current = -1;
	if (!depth || depth > CONSUMER_DEPTH_MAX || !max_msgs ||
	    max_msgs > ELASTICQ_BATCH_MAX ||
	    buf_size < sizeof(struct elasticq_frame) ||
	    buf_size > SIZE_MAX / depth)
		return -EINVAL;
	/* Check for room first: a half-queued set of SQEs cannot be undone. */
	if (io_uring_sq_space_left(ring) < depth)
		return -EBUSY;
	/* Round each buffer up so that every one starts 8-byte aligned. */
	buf_size = (buf_size + ELASTICQ_FRAME_ALIGN - 1) &
		   ~(size_t)(ELASTICQ_FRAME_ALIGN - 1);
	if (posix_memalign(&bufs, 64, depth * buf_size))
		return -ENOMEM;
	c->batches = calloc(depth, sizeof(*c->batches));
	if (!c->batches) {
		free(bufs);
		return -ENOMEM;
	}
	c->ring = ring;
	c->fd = fd;
	c->depth = depth;
	c->max_msgs = max_msgs;
	c->buf_size = buf_size;
	c->bufs = bufs;
	for (i = 0; i < depth; i++)
		consumer_queue(c, i);	/* cannot fail: room checked */
	ret = io_uring_submit(ring);
	/*
	 * On failure the SQEs stay in the ring and point into the buffers, so
	 * they are kept: elasticq_uring_consumer_exit() frees them later.
	 */
	return ret < 0 ? ret : 0;
}

int elasticq_uring_consumer_next(struct elasticq_uring_consumer *c,
				 struct elasticq_frame_iter *it)
{
	struct io_uring_cqe *cqe;
	unsigned int i;
	uint64_t ud;
	int ret, res;

	elasticq_frames_init(it, NULL, 0);
	if (!c->depth)
		return -EINVAL;	/* never initialized, or exited */
	if (c->current >= 0) {
		ret = consumer_queue(c, c->current);
		if (ret)
			return ret;
		/* Queued: a failed submit leaves it for the next one. */
		c->current = -1;
		ret = io_uring_submit_and_wait(c->ring, 1);
		if (ret < 0)
			return ret;
	}
	ret = io_uring_wait_cqe(c->ring, &cqe);
	if (ret < 0)
		return ret;
	ud = cqe->user_data;
	res = cqe->res;
	io_uring_cqe_seen(c->ring, cqe);
	i = (unsigned int)ud;
	if (ud >> 32 != CONSUMER_TAG || i >= c->depth)
		return -EPROTO;
	/*
	 * Hand the batch out (or its error) and resubmit it on the next call;
	 * one the kernel cancelled stays idle, as resubmitting it would only
	 * fail again.
	 */
	if (res != -ECANCELED)
		c->current = i;
	if (res < 0)
		return res;
	elasticq_frames_init(it, c->bufs + (size_t)i * c->buf_size,
			     c->batches[i].bytes);
	return res;
}

void elasticq_uring_consumer_exit(struct elasticq_uring_consumer *c)
{
	free(c->bufs);
	free(c->batches);
	c->bufs = NULL;
	c->batches = NULL;
	c->depth = 0;
	c->current = -1;
}
