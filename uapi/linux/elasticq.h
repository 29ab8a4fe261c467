/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR MIT) */
/*
 * elasticq: an elastic in-kernel message queue on /dev/elasticq.
 *
 * This header is the whole contract between the module and userspace.
 *
 * Messages go in with write(2)/writev(2) (one call, one message) and come
 * out with read(2) (one call, one message).  The ioctls below inspect and
 * configure the queue the file is bound to.
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
 * @pop_timeout_ns:	how long a blocking pop waits for a message
 * @variant:		ELASTICQ_VARIANT_*, fixed at creation
 * @full_policy:	ELASTICQ_FULL_*
 * @reserved:		must be zero
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

#endif /* _UAPI_LINUX_ELASTICQ_H */
