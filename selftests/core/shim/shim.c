// SPDX-License-Identifier: MIT
/*
 * shim.c - allocator, WARN counter and mutexes behind eq_shim.h.
 *
 * Every allocation carries a 16-byte header with the memory the kernel
 * would hold for it, so the shim can count live allocations and bytes;
 * under ASan the header is poisoned, so a stray access just before an
 * object is still reported.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sanitizer/asan_interface.h>

#define EQ_SHIM_URCU
#include "eq_shim.h"

#if defined(__SANITIZE_THREAD__)
#define EQ_SHIM_RCU_RWLOCK 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EQ_SHIM_RCU_RWLOCK 1
#endif
#endif

#ifdef EQ_SHIM_RCU_RWLOCK
static pthread_rwlock_t eq_rcu_lock = PTHREAD_RWLOCK_INITIALIZER;

void rcu_read_lock(void)
{
	pthread_rwlock_rdlock(&eq_rcu_lock);
}

void rcu_read_unlock(void)
{
	pthread_rwlock_unlock(&eq_rcu_lock);
}

/* Every reader that started before has finished. */
void synchronize_rcu(void)
{
	pthread_rwlock_wrlock(&eq_rcu_lock);
	pthread_rwlock_unlock(&eq_rcu_lock);
}
#else
#include <urcu/urcu-memb.h>

static pthread_key_t eq_rcu_key;
static pthread_once_t eq_rcu_once = PTHREAD_ONCE_INIT;
static __thread bool eq_rcu_registered;

static void eq_rcu_thread_exit(void *unused)
{
	(void)unused;
	urcu_memb_unregister_thread();
}

static void eq_rcu_key_init(void)
{
	pthread_key_create(&eq_rcu_key, eq_rcu_thread_exit);
}

void rcu_read_lock(void)
{
	if (!eq_rcu_registered) {
		pthread_once(&eq_rcu_once, eq_rcu_key_init);
		urcu_memb_register_thread();
		pthread_setspecific(eq_rcu_key, &eq_rcu_registered);
		eq_rcu_registered = true;
	}
	urcu_memb_read_lock();
}

void rcu_read_unlock(void)
{
	urcu_memb_read_unlock();
}

void synchronize_rcu(void)
{
	urcu_memb_synchronize_rcu();
}
#endif

#define EQ_SHIM_MAGIC	0x65717368696d3031ull	/* "eqshim01" */

struct eq_shim_hdr {
	size_t mem;	/* what the kernel would hold for it */
	u64 magic;
};
_Static_assert(sizeof(struct eq_shim_hdr) == 16, "keep malloc alignment");

long eq_shim_fail_countdown;
static long live_allocs;
static size_t live_bytes;
static unsigned long alloc_calls;
static unsigned long warnings;
static __thread char eq_shim_self;	/* its address names the thread */

void eq_shim_warn(const char *file, int line, const char *cond)
{
	__atomic_add_fetch(&warnings, 1, __ATOMIC_RELAXED);
	fprintf(stderr, "# WARNING: %s:%d: WARN_ON(%s)\n", file, line, cond);
}

unsigned long eq_shim_warnings(void)
{
	return __atomic_load_n(&warnings, __ATOMIC_RELAXED);
}

void eq_shim_reset_warnings(void)
{
	__atomic_store_n(&warnings, 0, __ATOMIC_RELAXED);
}

void eq_shim_fail_nth(long n)
{
	__atomic_store_n(&eq_shim_fail_countdown, n, __ATOMIC_RELAXED);
}

long eq_shim_live_allocs(void)
{
	return __atomic_load_n(&live_allocs, __ATOMIC_RELAXED);
}

size_t eq_shim_live_bytes(void)
{
	return __atomic_load_n(&live_bytes, __ATOMIC_RELAXED);
}

unsigned long eq_shim_alloc_calls(void)
{
	return __atomic_load_n(&alloc_calls, __ATOMIC_RELAXED);
}

/* True if this allocation is the one fault injection asked to fail. */
static bool eq_shim_should_fail(void)
{
	long n = __atomic_load_n(&eq_shim_fail_countdown, __ATOMIC_RELAXED);

	while (n > 0) {
		if (__atomic_compare_exchange_n(&eq_shim_fail_countdown, &n,
						n - 1, false, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED))
			return n == 1;
	}
	return false;
}

/*
 * As mm/slab_common.c (6.12): the smallest kmalloc-<class> cache that fits,
 * then whole pages of the next order; 0 and sizes kmalloc() cannot serve
 * come back unchanged.  Written from the kernel's size classes on x86_64
 * (KMALLOC_MIN_SIZE 8, the 96 and 192 caches), not from the queue core.
 */
size_t kmalloc_size_roundup(size_t size)
{
	static const size_t classes[] = {
		8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192,
	};
	size_t i, pages = PAGE_SIZE;

	_Static_assert(8192 == KMALLOC_MAX_CACHE_SIZE, "the last class");
	if (!size || size > KMALLOC_MAX_SIZE)
		return size;
	if (size <= KMALLOC_MAX_CACHE_SIZE) {
		for (i = 0; classes[i] < size; i++)
			;
		return classes[i];
	}
	while (pages < size)
		pages *= 2;
	return pages;
}

/* @mem: what the kernel would hold for it, counted in live_bytes */
static void *eq_shim_alloc(size_t size, size_t mem, gfp_t flags)
{
	struct eq_shim_hdr *h;

	__atomic_add_fetch(&alloc_calls, 1, __ATOMIC_RELAXED);
	if (eq_shim_should_fail() || size > SIZE_MAX - sizeof(*h))
		return NULL;
	h = malloc(sizeof(*h) + size);
	if (!h)
		return NULL;
	h->mem = mem;
	h->magic = EQ_SHIM_MAGIC;
	ASAN_POISON_MEMORY_REGION(h, sizeof(*h));
	if (flags & __GFP_ZERO)
		memset(h + 1, 0, size);
	__atomic_add_fetch(&live_allocs, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&live_bytes, mem, __ATOMIC_RELAXED);
	return h + 1;
}

void *kmalloc(size_t size, gfp_t flags)
{
	return eq_shim_alloc(size, kmalloc_size_roundup(size), flags);
}

void *kvmalloc(size_t size, gfp_t flags)
{
	/* As mm/util.c: no crazy sizes, and say so unless told not to. */
	if (size > INT_MAX) {
		WARN_ON_ONCE(!(flags & __GFP_NOWARN));
		return NULL;
	}
	/* Too big for kmalloc(): vmalloc() maps whole pages. */
	if (size > KMALLOC_MAX_SIZE)
		return eq_shim_alloc(size, PAGE_ALIGN(size), flags);
	return kmalloc(size, flags);
}

void *kvmalloc_array(size_t n, size_t size, gfp_t flags)
{
	size_t bytes;

	if (check_mul_overflow(n, size, &bytes))
		return NULL;
	return kvmalloc(bytes, flags);
}

void kfree(const void *p)
{
	struct eq_shim_hdr *h;

	if (!p)
		return;
	h = (struct eq_shim_hdr *)p - 1;
	ASAN_UNPOISON_MEMORY_REGION(h, sizeof(*h));
	if (WARN_ON(h->magic != EQ_SHIM_MAGIC))
		abort();	/* not ours, or freed twice */
	h->magic = 0;
	__atomic_sub_fetch(&live_allocs, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&live_bytes, h->mem, __ATOMIC_RELAXED);
	free(h);
}

void kvfree(const void *p)
{
	kfree(p);
}

void mutex_init(struct mutex *lock)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	WARN_ON(pthread_mutex_init(&lock->m, &a));
	pthread_mutexattr_destroy(&a);
	lock->owner = NULL;
}

void mutex_destroy(struct mutex *lock)
{
	WARN_ON(__atomic_load_n(&lock->owner, __ATOMIC_RELAXED));
	WARN_ON(pthread_mutex_destroy(&lock->m));
}

void mutex_lock(struct mutex *lock)
{
	if (WARN_ON(pthread_mutex_lock(&lock->m)))	/* EDEADLK: recursion */
		return;
	__atomic_store_n(&lock->owner, &eq_shim_self, __ATOMIC_RELAXED);
}

int mutex_trylock(struct mutex *lock)
{
	if (pthread_mutex_trylock(&lock->m))
		return 0;
	__atomic_store_n(&lock->owner, &eq_shim_self, __ATOMIC_RELAXED);
	return 1;
}

void mutex_unlock(struct mutex *lock)
{
	if (WARN_ON(!eq_shim_mutex_held(lock)))
		return;
	__atomic_store_n(&lock->owner, NULL, __ATOMIC_RELAXED);
	WARN_ON(pthread_mutex_unlock(&lock->m));
}

bool mutex_is_locked(struct mutex *lock)
{
	return __atomic_load_n(&lock->owner, __ATOMIC_RELAXED) != NULL;
}

bool eq_shim_mutex_held(const struct mutex *lock)
{
	return __atomic_load_n(&lock->owner, __ATOMIC_RELAXED) == &eq_shim_self;
}
