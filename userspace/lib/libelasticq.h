/* SPDX-License-Identifier: MIT */
/*
 * libelasticq: a small C library over <linux/elasticq.h>.
 *
 * Every function returns a non-negative value on success and a negative
 * errno on failure (like liburing), and never touches errno's meaning for
 * the caller.  Queues are plain file descriptors: poll them, pass them to
 * io_uring, close them with close(2).
 *
 *	int fd = elasticq_open("mqtt.ingest", O_RDWR, ELASTICQ_ATTACH_CREATE,
 *			       0660, NULL);
 *	elasticq_push(fd, "hello", 5);
 *	char buf[64 * 1024];
 *	size_t bytes;
 *	int n = elasticq_pop_batch(fd, buf, sizeof(buf), 64, 0, 0, &bytes);
 *	struct elasticq_frame_iter it;
 *	const void *msg;
 *	uint32_t len;
 *	elasticq_frames_init(&it, buf, bytes);
 *	while ((msg = elasticq_frames_next(&it, &len)))
 *		handle(msg, len);
 *
 * Build with `pkg-config --cflags --libs libelasticq`.  The io_uring
 * helpers at the end take liburing's types: include <liburing.h> to call
 * them (the library links liburing).
 */
#ifndef LIBELASTICQ_H
#define LIBELASTICQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <linux/elasticq.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * elasticq_open() - open /dev/elasticq, bound to a queue
 * @name:	a named queue, or NULL (or "") for the default queue
 * @oflags:	open(2) flags: O_RDONLY, O_WRONLY or O_RDWR, plus O_NONBLOCK;
 *		O_CLOEXEC is always added
 * @aflags:	ELASTICQ_ATTACH_CREATE, ELASTICQ_ATTACH_EXCL (0 with NULL
 *		@name: -EINVAL otherwise)
 * @mode:	permission bits of a queue that CREATE makes (the umask
 *		applies); ignored without CREATE, as open(2) does
 * @cfg:	configuration of a queue that CREATE makes, or NULL for the
 *		module's defaults; its @size may be 0 (filled in); ignored
 *		without CREATE
 *
 * Return: the file descriptor, or -errno (-ENOENT, -EEXIST, -EACCES,
 * -EINVAL, -ENOSPC as the ATTACH ioctl; -EINVAL also for a name longer
 * than ELASTICQ_NAME_MAX; -ENOENT also if the module is not loaded).  On
 * failure no file is left open.
 */
int elasticq_open(const char *name, int oflags, unsigned int aflags,
		  unsigned int mode, const struct elasticq_config *cfg);

/**
 * elasticq_destroy() - remove a named queue (as mq_unlink(3))
 * @name: the queue
 *
 * Return: 0, or -errno (-ENOENT: no such queue; -EPERM: not the owner;
 * -EINVAL: NULL, empty or bad name).
 */
int elasticq_destroy(const char *name);

/**
 * elasticq_default_config() - the default queue's configuration
 * @cfg: filled in (its @size set)
 *
 * A good start for a new queue's config.  It is what a queue created with
 * a NULL config gets (the module parameters) unless someone changed the
 * default queue with SET_CONFIG since the module was loaded.  Takes no
 * role on the default queue.
 *
 * Return: 0 or -errno.
 */
int elasticq_default_config(struct elasticq_config *cfg);

/** elasticq_get_config() - the bound queue's configuration; 0 or -errno */
int elasticq_get_config(int fd, struct elasticq_config *cfg);
/** elasticq_set_config() - change it (@cfg->size may be 0); 0 or -errno */
int elasticq_set_config(int fd, const struct elasticq_config *cfg);
/** elasticq_get_stats() - a snapshot of the bound queue; 0 or -errno */
int elasticq_get_stats(int fd, struct elasticq_stats *st);
/**
 * elasticq_get_owner() - the bound queue's owner, group and mode
 * @fd: a file bound to the queue, with read or write access to it
 * @o:  filled in (ids as the caller's user namespace sees them)
 *
 * Return: 0 or -errno (-EACCES: no access to the queue).
 */
int elasticq_get_owner(int fd, struct elasticq_owner *o);
/**
 * elasticq_set_owner() - change the bound queue's owner, group or mode
 * @fd:    a file bound to the queue
 * @flags: ELASTICQ_OWNER_UID, _GID and _MODE: which of the rest to set
 * @uid:   new owner (CAP_CHOWN only)
 * @gid:   new group (the owner may pick one of its own groups)
 * @mode:  new permission bits, 0..0777 (the owner or CAP_FOWNER)
 *
 * Return: 0 or -errno (-EPERM, -EINVAL).
 */
int elasticq_set_owner(int fd, unsigned int flags, uid_t uid, gid_t gid,
		       mode_t mode);
/** elasticq_consume() - claim the consumer role; 0 or -errno (-EBUSY) */
int elasticq_consume(int fd);

/**
 * elasticq_push() - enqueue one message (one write(2))
 * Return: 0, or -errno (-EAGAIN, -EMSGSIZE, -ETIMEDOUT, -ENOBUFS, ...).
 */
int elasticq_push(int fd, const void *msg, size_t len);

/**
 * elasticq_pop() - dequeue one message (one read(2))
 * Return: its length, or -errno (-EMSGSIZE: @size is too small, the
 * message stays queued).
 */
ssize_t elasticq_pop(int fd, void *buf, size_t size);

/**
 * elasticq_push_batch() - enqueue messages in order (PUSH_BATCH)
 * @msgs:	one iovec per message
 * @count:	0..ELASTICQ_BATCH_MAX
 * @flags:	ELASTICQ_BATCH_NONBLOCK, ELASTICQ_BATCH_TIMEOUT
 * @timeout_ns:	with ELASTICQ_BATCH_TIMEOUT
 * @error:	if not NULL: 0, or the -errno that stopped the batch (also
 *		when the call fails)
 *
 * Return: how many were enqueued, or -errno if none was (-EINVAL for
 * more than ELASTICQ_BATCH_MAX messages).
 */
int elasticq_push_batch(int fd, const struct iovec *msgs, unsigned int count,
			unsigned int flags, uint64_t timeout_ns, int *error);

/**
 * elasticq_pop_batch() - dequeue up to @max_msgs messages as frames
 * @buf, @size:	the buffer for the frames
 * @bytes:	if not NULL: the bytes of @buf filled (0 on failure)
 *
 * Return: how many messages, or -errno (-EAGAIN, -ETIMEDOUT, -EMSGSIZE if
 * the oldest message does not fit, -EBUSY if a lock-free queue has
 * another consumer).  Walk them with elasticq_frames_init() and
 * elasticq_frames_next().
 */
int elasticq_pop_batch(int fd, void *buf, size_t size, unsigned int max_msgs,
		       unsigned int flags, uint64_t timeout_ns, size_t *bytes);

/* Walks the frames a pop batch filled in. */
struct elasticq_frame_iter {
	const unsigned char *pos;
	const unsigned char *end;
};

/** elasticq_frames_init() - start at the first of @bytes bytes of frames */
void elasticq_frames_init(struct elasticq_frame_iter *it, const void *buf,
			  size_t bytes);

/**
 * elasticq_frames_next() - the next message
 * @len: receives its length
 *
 * Return: its payload, or NULL after the last one (or at a frame that
 * does not fit in what is left, and from then on: never reads past the
 * filled bytes).  The buffer need not be aligned.
 */
const void *elasticq_frames_next(struct elasticq_frame_iter *it,
				 uint32_t *len);

/** elasticq_strerror() - like strerror(-err) for the values above */
const char *elasticq_strerror(int err);

/*
 * io_uring.  A pop batch or push batch is an IORING_OP_URING_CMD whose
 * argument struct must stay valid until its completion; the completion's
 * res is what the ioctl would return.
 */
struct io_uring;
struct io_uring_sqe;

/**
 * elasticq_prep_pop_batch() - fill @sqe with a pop batch of @b on @fd
 * @b: a complete struct elasticq_pop_batch (size, buf, buf_len, max_msgs,
 *     flags, timeout_ns)
 */
void elasticq_prep_pop_batch(struct io_uring_sqe *sqe, int fd,
			     struct elasticq_pop_batch *b);
/** elasticq_prep_push_batch() - fill @sqe with a push batch of @b on @fd */
void elasticq_prep_push_batch(struct io_uring_sqe *sqe, int fd,
			      struct elasticq_push_batch *b);

/**
 * struct elasticq_uring_consumer - a batch consumer on io_uring
 *
 * Keeps @depth pop batches in flight on one queue, each with its own
 * buffer, so the kernel fills the next batch while the caller handles one.
 * Set up with elasticq_uring_consumer_init(), then call
 * elasticq_uring_consumer_next() in a loop.
 */
struct elasticq_uring_consumer {
	struct io_uring *ring;		/* the caller's ring */
	int fd;				/* the queue, open for reading */
	unsigned int depth;		/* batches in flight */
	unsigned int max_msgs;		/* per batch */
	size_t buf_size;		/* per batch */
	unsigned char *bufs;		/* depth * buf_size bytes */
	struct elasticq_pop_batch *batches;	/* depth of them */
	int current;			/* batch handed out last, or -1 */
};

/**
 * elasticq_uring_consumer_init() - allocate buffers and submit @depth pops
 * @c:		the consumer (filled in)
 * @ring:	an initialized ring with room for @depth SQEs
 * @fd:		the queue
 * @depth:	1..64 batches in flight
 * @max_msgs:	messages per batch, 1..ELASTICQ_BATCH_MAX
 * @buf_size:	bytes per batch (at least one frame of the largest message,
 *		else its batches fail with -EMSGSIZE)
 *
 * Return: 0 or -errno (-EINVAL: bad arguments; -EBUSY: the ring has no
 * room for @depth SQEs; -ENOMEM; or io_uring_submit()'s error).  After a
 * failed submit the SQEs are queued on the ring and still use the
 * buffers: elasticq_uring_consumer_exit() frees them once the ring is
 * gone.  It is safe to call after any failed init.
 */
int elasticq_uring_consumer_init(struct elasticq_uring_consumer *c,
				 struct io_uring *ring, int fd,
				 unsigned int depth, unsigned int max_msgs,
				 size_t buf_size);

/**
 * elasticq_uring_consumer_next() - wait for the next completed batch
 * @c:	the consumer
 * @it:	set to the batch's frames
 *
 * Resubmits the batch handed out by the previous call first (its buffer is
 * reused), then waits for a completion on the ring (completions with a
 * user_data that is not the consumer's are an error: use a ring of its
 * own).  A batch that failed is resubmitted by the next call too, unless
 * it failed with -ECANCELED.
 *
 * Return: the number of messages in @it, or -errno of the failed batch
 * (-ECANCELED when the queue's file was closed, -ETIMEDOUT, ...), or
 * -EPROTO for a completion that is not the consumer's (it is consumed),
 * or the error of io_uring_submit() or io_uring_wait_cqe() (-EINTR).
 */
int elasticq_uring_consumer_next(struct elasticq_uring_consumer *c,
				 struct elasticq_frame_iter *it);

/**
 * elasticq_uring_consumer_exit() - free the buffers
 *
 * The batches still in flight must have completed: close the queue's file
 * (they complete with -ECANCELED) and reap them, or tear the ring down
 * first.
 */
void elasticq_uring_consumer_exit(struct elasticq_uring_consumer *c);

#ifdef __cplusplus
}
#endif

#endif /* LIBELASTICQ_H */
