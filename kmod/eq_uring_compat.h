/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The io_uring command API as eq_uring.c uses it, on 6.1 and on 6.12.
 *
 * 6.1 declares struct io_uring_cmd in <linux/io_uring.h> with a pointer to
 * the SQE's command area, and cannot cancel a command: a parked command
 * that nobody completes keeps its ring's teardown (and an exec of its
 * task) waiting.  From 6.7 the struct lives in <linux/io_uring/cmd.h>, the
 * command area is reached through the SQE, and a driver can mark a command
 * cancelable: io_uring then calls ->uring_cmd() with IO_URING_F_CANCEL when
 * the ring is torn down or the task exits or execs.  EQ_URING_CANCELABLE
 * says which of the two this kernel is; eq_uring.c watches parked commands
 * itself where it is 0.  Tested on 6.1 and 6.12.
 */
#ifndef _EQ_URING_COMPAT_H
#define _EQ_URING_COMPAT_H

#include <linux/io_uring.h>
#include <linux/io_uring_types.h>

/* 6.8 moved the command API to its own header (Kbuild looks for it). */
#ifdef EQ_HAVE_IO_URING_CMD_H
#include <linux/io_uring/cmd.h>
#endif

#ifdef IORING_URING_CMD_CANCELABLE
#define EQ_URING_CANCELABLE	1

static inline const void *eq_uring_cmd_area(const struct io_uring_cmd *cmd)
{
	return io_uring_sqe_cmd(cmd->sqe);
}

static inline void eq_uring_mark_cancelable(struct io_uring_cmd *cmd,
					    unsigned int issue_flags)
{
	io_uring_cmd_mark_cancelable(cmd, issue_flags);
}

static inline bool eq_uring_is_cancel(unsigned int issue_flags)
{
	return issue_flags & IO_URING_F_CANCEL;
}

/* io_uring cancels this command itself: nothing to watch. */
static inline bool eq_uring_abandoned(struct io_uring_cmd *cmd)
{
	return false;
}

#else
#define EQ_URING_CANCELABLE	0

static inline const void *eq_uring_cmd_area(const struct io_uring_cmd *cmd)
{
	return cmd->cmd;
}

static inline void eq_uring_mark_cancelable(struct io_uring_cmd *cmd,
					    unsigned int issue_flags)
{
}

static inline bool eq_uring_is_cancel(unsigned int issue_flags)
{
	return false;
}

/*
 * Would io_uring wait for this command forever: its ring is being torn
 * down, or its task exits or execs (both wait for the task's requests).
 */
static inline bool eq_uring_abandoned(struct io_uring_cmd *cmd)
{
	struct io_kiocb *req = cmd_to_io_kiocb(cmd);

	/* Racy reads, by design: a later look sees what this one missed. */
	return data_race(percpu_ref_is_dying(&req->ctx->refs) ||
			 (req->task->flags & PF_EXITING) ||
			 req->task->in_execve);
}
#endif

/* The task whose context completes the command (its memory, its files). */
static inline struct task_struct *eq_uring_task(struct io_uring_cmd *cmd)
{
	return cmd_to_io_kiocb(cmd)->task;
}

#endif /* _EQ_URING_COMPAT_H */
