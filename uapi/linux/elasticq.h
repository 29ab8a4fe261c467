/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR MIT) */
/*
 * elasticq: an elastic in-kernel message queue on /dev/elasticq.
 *
 * This header is the whole contract between the module and userspace.
 *
 * Messages go in with write(2)/writev(2) (one call, one message) and come
 * out with read(2) (one call, one message), or in batches with the
 * PUSH_BATCH and POP_BATCH ioctls.  A new file is bound to the default
 * queue; ATTACH binds it to a named queue instead.  The other ioctls
 * inspect and configure the queue the file is bound to.
 *
 * Every struct starts with a @size field holding sizeof() of the struct as
 * the caller knows it; the same size is encoded in the ioctl number.  New
 * fields are only ever appended, so an older binary keeps working against a
 * newer module and the other way round (the kernel rejects a larger struct
 * whose unknown tail is not zero with E2BIG).  All reserved fields and
 * padding must be zero (EINVAL otherwise).  The GET ioctls read only @size
 * and @flags, fill in the rest and set @size to the number of bytes filled.
 */
#ifndef _UAPI_LINUX_ELASTICQ_H
#define _UAPI_LINUX_ELASTICQ_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define ELASTICQ_DEVICE_PATH		"/dev/elasticq"

/* Bounds that no configuration can exceed. */
#define ELASTICQ_MSG_SIZE_LIMIT		0x100000	/* 1 MiB */
#define ELASTICQ_CAPACITY_LIMIT		0x1000000	/* slots */

/* enum elasticq_variant values, in elasticq_config.variant */
#define ELASTICQ_VARIANT_LOCKED		0	/* mutex-protected ring, MPMC */
#define ELASTICQ_VARIANT_LOCKFREE	1	/* lock-free MPSC, one consumer */

/* elasticq_config.full_policy: what a push does when the queue is full */
#define ELASTICQ_FULL_BLOCK		0	/* sleep until space (or EAGAIN) */
#define ELASTICQ_FULL_REJECT		1	/* fail with EAGAIN at once */
#define ELASTICQ_FULL_DROP_OLDEST	2	/* drop the head message, counted */

/* elasticq_config.push_timeout_ns / pop_timeout_ns: never time out */
#define ELASTICQ_TIMEOUT_NONE		(~(__u64)0)

/**
 * struct elasticq_config - configuration of one queue
 * @size:		sizeof(struct elasticq_config) as known to the caller
 * @flags:		must be zero
 * @initial_capacity:	slots at creation; min <= initial <= max
 * @min_capacity:	the ring never shrinks below this; > 0
 * @max_capacity:	the ring never grows beyond this; >= min
 * @growth_pct:		grow factor in percent, > 100 (150 means 1.5x)
 * @shrink_pct:		shrink when a pop leaves len <= capacity * pct / 100;
 *			1..99, and shrink_pct * growth_pct < 10000 so that a
 *			shrink never leaves a large ring full
 * @max_msg_size:	largest message in bytes, 1..ELASTICQ_MSG_SIZE_LIMIT
 * @max_bytes:		payload bytes that may be queued at once, > 0
 * @push_timeout_ns:	how long a blocking push waits for space
 *			(ELASTICQ_TIMEOUT_NONE: for ever)
 * @pop_timeout_ns:	how long a blocking pop waits for a message
 * @variant:		ELASTICQ_VARIANT_*, fixed at creation.  LOCKFREE: one
 *			consumer file at a time (EBUSY for another), and no
 *			DROP_OLDEST policy (EINVAL)
 * @full_policy:	ELASTICQ_FULL_*
 * @reserved:		must be zero
 *
 * Signals: a push or pop (write, read, or a batch) waiting with a finite
 * timeout that a signal interrupts fails with EINTR, even if the handler
 * has SA_RESTART: as with SO_RCVTIMEO and SO_SNDTIMEO on sockets, a
 * restart would start the whole timeout again, and a periodic signal
 * would keep it from ever expiring.  A wait with ELASTICQ_TIMEOUT_NONE is
 * restarted under SA_RESTART and fails with EINTR otherwise.
 *
 * Capacity counts messages (slots); @max_bytes bounds their payload.
 * Growth: a push that finds the ring full grows it to
 * min(max, max(ceil(capacity * growth_pct / 100), len + 1)).
 * Shrink: a pop that leaves len <= floor(capacity * shrink_pct / 100)
 * shrinks it to max(floor(capacity * 100 / growth_pct), len, min).
 */
struct elasticq_config {
	__u32 size;
	__u32 flags;
	__u32 initial_capacity;
	__u32 min_capacity;
	__u32 max_capacity;
	__u32 growth_pct;
	__u32 shrink_pct;
	__u32 max_msg_size;
	__u64 max_bytes;
	__u64 push_timeout_ns;
	__u64 pop_timeout_ns;
	__u32 variant;
	__u32 full_policy;
	__u64 reserved[4];
};

#define ELASTICQ_CONFIG_SIZE_VER0	96	/* the first published size */

/**
 * struct elasticq_stats - a snapshot of one queue
 * @size:	sizeof(struct elasticq_stats) as known to the caller
 * @flags:	must be zero
 * @len:	messages queued now (including ones being copied out)
 * @capacity:	slots in the ring now
 * @bytes:	payload bytes queued now
 * @mem_bytes:	kernel memory held for the queue now (ring and messages)
 * @high_water:	largest @len seen
 * @enqueued:	messages accepted, ever
 * @dequeued:	messages delivered to a consumer, ever
 * @dropped:	messages removed by the drop-oldest policy
 * @rejected:	pushes refused because the queue was full
 * @grows:	times the ring grew
 * @shrinks:	times the ring shrank
 * @producers:	open files bound to the queue that have pushed
 * @consumers:	open files bound to the queue holding the consumer role
 * @reserved:	zero
 *
 * A snapshot of one moment, as far as these relations go:
 * len == enqueued - dequeued - dropped, len <= capacity, and
 * len <= high_water.  The counters and @high_water never go down.  A
 * lock-based queue's snapshot is exact.  A lock-free queue's is taken
 * without stopping its producers: @enqueued counts a push from the moment
 * it has a slot, before the message is visible to the consumer (so @len
 * may count messages being pushed); @bytes and @mem_bytes also count
 * pushes that reserved bytes and memory but may still fail (so they may
 * exceed what @len's messages hold, by one message per pushing task, and
 * @bytes may exceed max_bytes by as much); @rejected is read a moment
 * apart from the rest.
 */
struct elasticq_stats {
	__u32 size;
	__u32 flags;
	__u64 len;
	__u64 capacity;
	__u64 bytes;
	__u64 mem_bytes;
	__u64 high_water;
	__u64 enqueued;
	__u64 dequeued;
	__u64 dropped;
	__u64 rejected;
	__u64 grows;
	__u64 shrinks;
	__u32 producers;
	__u32 consumers;
	__u64 reserved[4];
};

#define ELASTICQ_STATS_SIZE_VER0	136	/* the first published size */

/* Names of queues: 1..ELASTICQ_NAME_MAX bytes of [A-Za-z0-9._-] */
#define ELASTICQ_NAME_MAX		63
#define ELASTICQ_NAME_SIZE		64	/* with the terminating NUL */

/* elasticq_attach.flags */
/* create the queue if it does not exist (O_CREAT) */
#define ELASTICQ_ATTACH_CREATE		0x1
/* with CREATE: fail with EEXIST if it exists (O_EXCL) */
#define ELASTICQ_ATTACH_EXCL		0x2

/**
 * struct elasticq_attach - bind the file to a named queue (ATTACH)
 * @size:	sizeof(struct elasticq_attach) as known to the caller
 * @flags:	ELASTICQ_ATTACH_*
 * @mode:	with CREATE: permission bits of a new queue (0..0777, the
 *		caller's umask applies); must be zero without CREATE
 * @reserved0:	must be zero
 * @name:	the queue's name, NUL-terminated; the bytes after the NUL
 *		must be zero
 * @config:	with CREATE: user pointer to a struct elasticq_config for a
 *		new queue (its @size field says how large: E2BIG above 4096,
 *		as for clone3), or 0 for the module's defaults; must be zero
 *		without CREATE.  Checked, then ignored, when the queue exists
 *		already.
 * @reserved:	must be zero
 *
 * The queue's owner and group are the creator's fsuid and fsgid.  Binding
 * checks permission like open(2) does: a file opened for writing needs
 * write permission on the queue (to produce), one opened for reading needs
 * read permission (to consume); a file opened for neither cannot bind
 * (EBADF).  A file can be bound once, before it was used to push or pop
 * (EBUSY otherwise); open another file for another queue.  A CREATE that
 * fails, for any reason, leaves no queue behind.
 *
 * The creator's user pays for the queue: its ring and messages count
 * against the user's memory limit and the queue against the user's number
 * of queues (EDQUOT beyond either; module parameters max_user_bytes and
 * max_user_queues), for the queue's whole life, whoever pushes into it and
 * whoever owns it later.
 */
struct elasticq_attach {
	__u32 size;
	__u32 flags;
	__u32 mode;
	__u32 reserved0;
	char name[ELASTICQ_NAME_SIZE];
	__u64 config;
	__u64 reserved[3];
};

#define ELASTICQ_ATTACH_SIZE_VER0	112

/* elasticq_owner.flags for SET_OWNER: the fields to change */
#define ELASTICQ_OWNER_UID		0x1
#define ELASTICQ_OWNER_GID		0x2
#define ELASTICQ_OWNER_MODE		0x4

/**
 * struct elasticq_owner - owner, group and mode of a queue (GET/SET_OWNER)
 * @size:	sizeof(struct elasticq_owner) as known to the caller
 * @flags:	GET: must be zero; SET: ELASTICQ_OWNER_* bits, the fields
 *		to change (at least one)
 * @uid:	the owner, in the caller's user namespace (GET: the overflow
 *		uid if it has no mapping there)
 * @gid:	the group, likewise
 * @mode:	permission bits, 0..0777
 * @reserved0:	must be zero
 * @reserved:	must be zero
 *
 * Applies to the queue the file is bound to, the default queue included,
 * like fchown(2) and fchmod(2) on a message queue descriptor: only
 * CAP_CHOWN gives a queue to another user; its owner may set its group to
 * one of the owner's groups and change its mode; CAP_CHOWN (owner, group)
 * and CAP_FOWNER (mode) stand in for the owner.  Files already bound keep
 * the access they were given.
 */
struct elasticq_owner {
	__u32 size;
	__u32 flags;
	__u32 uid;
	__u32 gid;
	__u32 mode;
	__u32 reserved0;
	__u64 reserved[2];
};

#define ELASTICQ_OWNER_SIZE_VER0	40

/**
 * struct elasticq_destroy - remove a named queue (DESTROY)
 * @size:	sizeof(struct elasticq_destroy) as known to the caller
 * @flags:	must be zero
 * @name:	as in struct elasticq_attach
 * @reserved:	must be zero
 *
 * Like mq_unlink(3): the name disappears at once (a new queue may be
 * created under it), the queue and its messages stay usable by the files
 * still bound to it and are freed when the last of them is closed.  Needs
 * the queue's owner or CAP_SYS_ADMIN.
 */
struct elasticq_destroy {
	__u32 size;
	__u32 flags;
	char name[ELASTICQ_NAME_SIZE];
	__u64 reserved[2];
};

#define ELASTICQ_DESTROY_SIZE_VER0	88

/* Most messages one PUSH_BATCH or POP_BATCH handles */
#define ELASTICQ_BATCH_MAX		1024

/* elasticq_push_batch.flags and elasticq_pop_batch.flags */
/* do not wait, as if the file had O_NONBLOCK */
#define ELASTICQ_BATCH_NONBLOCK		0x1
/* wait at most @timeout_ns instead of the queue's push or pop timeout */
#define ELASTICQ_BATCH_TIMEOUT		0x2

/**
 * struct elasticq_msg_vec - one message of a push batch
 * @addr:	user pointer to the payload
 * @len:	payload length in bytes
 */
struct elasticq_msg_vec {
	__u64 addr;
	__u64 len;
};

/**
 * struct elasticq_push_batch - enqueue several messages (PUSH_BATCH)
 * @size:	sizeof(struct elasticq_push_batch) as known to the caller
 * @flags:	ELASTICQ_BATCH_*
 * @msgs:	user pointer to @count struct elasticq_msg_vec
 * @count:	messages in @msgs, 0..ELASTICQ_BATCH_MAX
 * @error:	out: 0 if every message was enqueued, else the negative errno
 *		that stopped the batch at the message whose index the ioctl
 *		returned (when that is the first, the ioctl's errno: -EINTR
 *		when interrupted by a signal, see struct elasticq_config; a
 *		call that is restarted sets it again)
 * @timeout_ns:	with ELASTICQ_BATCH_TIMEOUT, how long the call may wait for
 *		room in total (0: ETIMEDOUT at once when full); must be zero
 *		without it
 * @reserved:	must be zero
 *
 * Like sendmmsg(2): messages are enqueued in order, each exactly as one
 * write(2) would (same size limits, full policy, blocking), and the ioctl
 * returns how many were.  A message that fails stops the batch there: the
 * ones before it stay enqueued, its error is stored in @error, and if it
 * was the first the ioctl fails with that error instead.
 */
struct elasticq_push_batch {
	__u32 size;
	__u32 flags;
	__u64 msgs;
	__u32 count;
	__s32 error;
	__u64 timeout_ns;
	__u64 reserved[2];
};

#define ELASTICQ_PUSH_BATCH_SIZE_VER0	48

/**
 * struct elasticq_frame - header of one message in a pop batch buffer
 * @len:	payload length in bytes; the payload follows the header
 * @flags:	zero today
 *
 * The next frame starts ELASTICQ_FRAME_SIZE(@len) bytes after this one.
 */
struct elasticq_frame {
	__u32 len;
	__u32 flags;
};

#define ELASTICQ_FRAME_ALIGN		8
#define ELASTICQ_FRAME_SIZE(len)	(sizeof(struct elasticq_frame) + \
					 (((__u64)(len) + ELASTICQ_FRAME_ALIGN - 1) & \
					  ~(__u64)(ELASTICQ_FRAME_ALIGN - 1)))

/**
 * struct elasticq_pop_batch - dequeue several messages (POP_BATCH)
 * @size:	sizeof(struct elasticq_pop_batch) as known to the caller
 * @flags:	ELASTICQ_BATCH_*
 * @buf:	user pointer to the buffer that receives the frames
 * @buf_len:	its size in bytes
 * @max_msgs:	most messages to return, 1..ELASTICQ_BATCH_MAX
 * @reserved0:	must be zero
 * @timeout_ns:	with ELASTICQ_BATCH_TIMEOUT, how long to wait for the first
 *		message (0: ETIMEDOUT at once when empty); must be zero
 *		without it
 * @bytes:	out: bytes of @buf filled with frames
 * @reserved:	must be zero
 *
 * Like recvmmsg(2): waits for at least one message (unless non-blocking),
 * then fills @buf with as many queued messages as fit, up to @max_msgs,
 * each as a struct elasticq_frame followed by its payload padded to
 * ELASTICQ_FRAME_ALIGN, and returns how many.  EMSGSIZE if the oldest
 * message does not fit in @buf_len (it stays queued).  A message leaves
 * the queue only once it was copied out: if @buf faults part-way, the call
 * returns the messages delivered before the fault (EFAULT if none) and the
 * rest stay queued, in order.
 */
struct elasticq_pop_batch {
	__u32 size;
	__u32 flags;
	__u64 buf;
	__u64 buf_len;
	__u32 max_msgs;
	__u32 reserved0;
	__u64 timeout_ns;
	__u64 bytes;
	__u64 reserved[2];
};

#define ELASTICQ_POP_BATCH_SIZE_VER0	64

/* 0xEA is not taken in Documentation/userspace-api/ioctl/ioctl-number.rst */
#define ELASTICQ_IOC_MAGIC		0xEA

/* Read the statistics of the bound queue. */
#define ELASTICQ_IOC_GET_STATS	_IOWR(ELASTICQ_IOC_MAGIC, 0x01, struct elasticq_stats)
/* Read the configuration of the bound queue. */
#define ELASTICQ_IOC_GET_CONFIG	_IOWR(ELASTICQ_IOC_MAGIC, 0x02, struct elasticq_config)
/*
 * Change the configuration of the bound queue.  Invalid values: EINVAL.
 * A new max_capacity or max_bytes below what is queued now: EBUSY.
 * Either way nothing changes.
 */
#define ELASTICQ_IOC_SET_CONFIG	_IOW(ELASTICQ_IOC_MAGIC, 0x03, struct elasticq_config)
/*
 * Bind the file to a named queue, creating it with CREATE.  ENOENT: no such
 * queue and no CREATE; EEXIST: it exists and CREATE|EXCL; EACCES: the
 * file's access mode is not allowed by the queue's mode; EBADF: the file is
 * open neither for reading nor for writing; EBUSY: the file was bound or
 * used already; ENOSPC: the module's limit on queues is reached; EDQUOT:
 * the creator's limit on queues or memory is reached; ENOBUFS: the
 * module's memory limit is reached; EINVAL: a bad name, flag, mode,
 * reserved field or config.
 */
#define ELASTICQ_IOC_ATTACH	_IOW(ELASTICQ_IOC_MAGIC, 0x04, struct elasticq_attach)
/* Remove a named queue.  ENOENT: no such queue; EPERM: not the owner. */
#define ELASTICQ_IOC_DESTROY	_IOW(ELASTICQ_IOC_MAGIC, 0x05, struct elasticq_destroy)
/*
 * Claim the consumer role on the bound queue (the first read or pop batch
 * claims it too).  The argument must be 0.  EBADF: not open for reading.
 */
#define ELASTICQ_IOC_CONSUME	_IO(ELASTICQ_IOC_MAGIC, 0x06)
/* Enqueue a batch; see struct elasticq_push_batch. */
#define ELASTICQ_IOC_PUSH_BATCH	_IOWR(ELASTICQ_IOC_MAGIC, 0x07, struct elasticq_push_batch)
/* Dequeue a batch; see struct elasticq_pop_batch. */
#define ELASTICQ_IOC_POP_BATCH	_IOWR(ELASTICQ_IOC_MAGIC, 0x08, struct elasticq_pop_batch)
/* Read the bound queue's owner, group and mode; see struct elasticq_owner. */
#define ELASTICQ_IOC_GET_OWNER	_IOWR(ELASTICQ_IOC_MAGIC, 0x09, struct elasticq_owner)
/*
 * Change them.  EPERM: not allowed (see struct elasticq_owner); EINVAL: no
 * flag or an unknown one, a mode above 0777, an id without a mapping in the
 * caller's user namespace, or a reserved field set.  Nothing changes on
 * error.
 */
#define ELASTICQ_IOC_SET_OWNER	_IOW(ELASTICQ_IOC_MAGIC, 0x0a, struct elasticq_owner)

/**
 * struct elasticq_uring_cmd - the command area of an IORING_OP_URING_CMD SQE
 * @arg:	user pointer to the struct the ioctl of the same number takes
 * @reserved:	must be zero
 *
 * io_uring runs PUSH_BATCH and POP_BATCH as commands: sqe->opcode is
 * IORING_OP_URING_CMD, sqe->fd the elasticq file, sqe->cmd_op the ioctl
 * number (ELASTICQ_IOC_PUSH_BATCH or ELASTICQ_IOC_POP_BATCH), and this
 * struct sits in sqe->cmd (it fits a normal 64-byte SQE).  The argument
 * struct is the ioctl's, with the same checks and the same results: the
 * CQE's res is what the ioctl would return (a count, or -errno) and the
 * output fields (@error, @bytes) are written back before the completion.
 * The struct must stay valid until then.  Where the ioctl would sleep
 * (empty queue for a pop, full one for a push), the command waits without
 * a thread: it completes when a producer (or consumer) makes progress
 * possible, with -ETIMEDOUT at the timeout, and with -ECANCELED when the
 * file is closed by the submitter, the submitting task exits or the ring
 * is torn down.  Waiting pops are woken one per message pushed.  How many
 * commands may wait is bounded: beyond the module parameter
 * max_parked_per_queue (default 256) on one queue a command that would
 * wait completes with -EBUSY, beyond max_parked_per_user (default 1024,
 * CAP_SYS_RESOURCE exempt) for the submitter's uid with -EDQUOT (a push
 * with its count, and the error in @error).  A waiting push is counted in
 * the stats' rejected once if it gives up for lack of room (timeout or a
 * bound), never while it waits.  Other command numbers: -ENOTTY.
 */
struct elasticq_uring_cmd {
	__u64 arg;
	__u64 reserved;
};

#endif /* _UAPI_LINUX_ELASTICQ_H */
