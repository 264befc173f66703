/* hazard.h -- reading a shared pointer without a lock: hazard pointers
 * (Michael, "Hazard Pointers: Safe Memory Reclamation for Lock-Free
 * Objects", IEEE TPDS 15(6), 2004).
 *
 * A reader publishes the pointer it is about to use in its thread's slot,
 * then checks that the shared pointer still holds it; a writer swaps the
 * shared pointer and retires the old object, which is freed only once no
 * slot holds it. Readers take no lock and write no cache line shared with
 * other threads (each thread owns its slot); writers never wait for
 * readers (a retired object that is still in use stays on the retired
 * list until a later hazard_reclaim()).
 *
 * Slots are per thread and process-wide, made on a thread's first
 * hazard_acquire() and handed back (for another thread to reuse) when the
 * thread ends. A thread may hold up to HAZARD_PER_THREAD objects at once
 * (nested reads).
 */
#ifndef SERVICE_HAZARD_H
#define SERVICE_HAZARD_H

#include <stdatomic.h>
#include <stddef.h>

#define HAZARD_PER_THREAD 8

/* Readers: the current value of *src, safe to use until hazard_release()
 * on this thread. NULL when *src is NULL. Aborts when the thread already
 * holds HAZARD_PER_THREAD objects (a programming error). */
void *hazard_acquire(void *_Atomic *src);
void hazard_release(const void *p);

/* Writers (serialized by the caller): the retired objects of one shared
 * pointer. Zero-initialize it. */
struct hazard_retired {
    void **items;
    size_t n, cap;
    void (*free_fn)(void *);
};

/* Swap *src to p and retire the old value (not NULL); the caller must be
 * the only writer of *src. Frees what it can at once. */
void hazard_publish(void *_Atomic *src, void *p, struct hazard_retired *r);
/* Free the retired objects that no reader holds; returns how many are
 * left (still in use). */
size_t hazard_reclaim(struct hazard_retired *r);
/* Free every retired object: only when no reader can run any more. */
void hazard_retired_free_all(struct hazard_retired *r);

#endif /* SERVICE_HAZARD_H */
