// SPDX-License-Identifier: GPL-2.0-only
/*
 * revirt memory balloon: gives guest pages to the host when the host asks
 * for them (num_pages in config) and takes them back when it lowers its
 * target.
 *
 * The balloon follows the target in bounded steps from a work item and
 * writes its size to "actual" after every step.  Pages come from
 * balloon_page_alloc(), which neither retries hard nor dips into reserves:
 * when the guest runs short, inflating pauses and tries again later
 * instead of waking the OOM killer.  The pages are balloon pages the
 * kernel can migrate (balloon compaction).
 *
 * Remove hands every page back first, telling the host and waiting for its
 * answer, writes actual 0, and only then resets the device and
 * frees the queues: a host watching the device sees the balloon empty
 * before it sees status 0.  The reset attribute and a features_mask write
 * remove and probe the driver again, so they take the same path.
 */

#include <linux/balloon_compaction.h>
#include <linux/delay.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/notifier.h>
#include <linux/oom.h>
#include <linux/page_reporting.h>
#include <linux/revirt.h>
#include <linux/revirt_ring.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/swap.h>
#include <linux/vmstat.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <uapi/linux/virtio_balloon.h>
#include <uapi/linux/virtio_ids.h>

#include "revirt_compat.h"

/* The device counts in 4 KiB pages whatever the guest's page size. */
#define REVIRT_BALLOON_PFNS_PER_PAGE	(PAGE_SIZE >> VIRTIO_BALLOON_PFN_SHIFT)

/* Device pages (4 KiB) one inflate or deflate message carries at most. */
#define REVIRT_BALLOON_STEP		256

/* Bound on waiting for the host to take one message. */
#define REVIRT_BALLOON_TIMEOUT		(10 * HZ)

/* Pause after an inflate step that found the guest short of memory. */
#define REVIRT_BALLOON_RETRY_MIN	(HZ / 5)
#define REVIRT_BALLOON_RETRY_MAX	(10 * HZ)

/* Remove waits at most this many times 20 ms for pages compaction holds. */
#define REVIRT_BALLOON_ISOLATED_WAITS	250

/* Statistics the driver reports; see revirt_balloon_fill_stats(). */
#define REVIRT_BALLOON_NR_STATS		8

static unsigned int oom_pages = 1024;
module_param(oom_pages, uint, 0644);
MODULE_PARM_DESC(oom_pages,
		 "Device pages (4 KiB) handed back per OOM notification (DEFLATE_ON_OOM)");

/**
 * struct revirt_balloon - one balloon device
 * @vdev: the device
 * @inflate_vq: queue of inflate messages
 * @deflate_vq: queue of deflate messages
 * @stats_vq: statistics queue, or NULL without VIRTIO_BALLOON_F_STATS_VQ
 * @report_vq: free page reporting queue, or NULL
 * @acked: woken when the host used a buffer of any queue
 * @size_work: follows the host's target, one step per run
 * @stats_work: answers the host's request for statistics
 * @stop_lock: protects @stopping
 * @stopping: remove started; no work item is queued any more
 * @lock: the page list, @num_pages, @pfns, @num_pfns, @stuck, @hold, @limbo
 * @bdi: the balloon's pages (balloon compaction bookkeeping)
 * @limbo: pages whose return the host did not acknowledge; they go back
 *	to the guest only after the device was reset
 * @num_pages: device pages (4 KiB) in the balloon
 * @stuck: the host did not answer in time; the balloon no longer moves
 * @hold: deflated for the OOM killer: no inflating until the target changes
 * @retry: current pause after a failed inflate step
 * @oom_nb: the OOM notifier (DEFLATE_ON_OOM)
 * @oom_registered: @oom_nb is registered
 * @pr: free page reporting (VIRTIO_BALLOON_F_REPORTING)
 * @pr_registered: @pr is registered
 * @stats: statistics buffer, read by the host
 * @num_pfns: entries of @pfns in the message being built
 * @pfns: page frame numbers of one message, read by the host
 */
struct revirt_balloon {
	struct revirt_device *vdev;
	struct revirt_virtqueue *inflate_vq;
	struct revirt_virtqueue *deflate_vq;
	struct revirt_virtqueue *stats_vq;
	struct revirt_virtqueue *report_vq;
	wait_queue_head_t acked;
	struct delayed_work size_work;
	struct work_struct stats_work;
	spinlock_t stop_lock;		/* stopping */
	bool stopping;
	struct mutex lock;		/* pages, pfns, num_pages */
	struct balloon_dev_info bdi;
	struct list_head limbo;
	unsigned int num_pages;
	bool stuck;
	bool hold;
	unsigned long retry;
	struct notifier_block oom_nb;
	bool oom_registered;
	struct page_reporting_dev_info pr;
	bool pr_registered;
	struct virtio_balloon_stat stats[REVIRT_BALLOON_NR_STATS];
	unsigned int num_pfns;
	__virtio32 pfns[REVIRT_BALLOON_STEP];
};

static void revirt_balloon_acked(struct revirt_virtqueue *vq)
{
	struct revirt_balloon *rb = vq->vdev->priv;

	wake_up(&rb->acked);
}

/* Queue a work item unless remove has begun. */
static void revirt_balloon_kick_size(struct revirt_balloon *rb,
				     unsigned long delay)
{
	unsigned long flags;

	spin_lock_irqsave(&rb->stop_lock, flags);
	if (!rb->stopping)
		mod_delayed_work(system_freezable_wq, &rb->size_work, delay);
	spin_unlock_irqrestore(&rb->stop_lock, flags);
}

static void revirt_balloon_stats_request(struct revirt_virtqueue *vq)
{
	struct revirt_balloon *rb = vq->vdev->priv;
	unsigned long flags;

	spin_lock_irqsave(&rb->stop_lock, flags);
	if (!rb->stopping)
		queue_work(system_freezable_wq, &rb->stats_work);
	spin_unlock_irqrestore(&rb->stop_lock, flags);
}

/* The host used our buffer, or never will. */
static bool revirt_balloon_used(struct revirt_virtqueue *vq, int *err)
{
	unsigned int len;

	if (revirt_vq_get_buf(vq, &len))
		return true;
	if (revirt_vq_is_broken(vq)) {
		*err = -EIO;
		return true;
	}
	return false;
}

/*
 * Put one buffer on @vq and wait, bounded, until the host used it.  A
 * host that does not answer leaves the buffer on the ring: the balloon is
 * stuck until the core resets the device, which the driver asks for.
 */
static int revirt_balloon_send(struct revirt_balloon *rb,
			       struct revirt_virtqueue *vq,
			       struct scatterlist *sg, unsigned int nents,
			       bool device_writes)
{
	int err;

	if (device_writes)
		err = revirt_vq_add_inbuf(vq, sg, nents, rb, GFP_KERNEL);
	else
		err = revirt_vq_add_outbuf(vq, sg, nents, rb, GFP_KERNEL);
	if (err)
		return err;
	revirt_vq_kick(vq);
	if (!wait_event_timeout(rb->acked, revirt_balloon_used(vq, &err),
				REVIRT_BALLOON_TIMEOUT)) {
		dev_err(&rb->vdev->dev, "host did not take a message on %s in %u s: balloon stopped, resetting the device\n",
			vq->name, REVIRT_BALLOON_TIMEOUT / HZ);
		revirt_schedule_reset(rb->vdev);
		return -ETIMEDOUT;
	}
	if (err)
		dev_err_ratelimited(&rb->vdev->dev, "queue %s is broken: balloon stopped\n",
				    vq->name);
	return err;
}

/* Tell the host about the page frame numbers in rb->pfns. */
static int revirt_balloon_tell(struct revirt_balloon *rb,
			       struct revirt_virtqueue *vq)
{
	struct scatterlist sg;
	int err;

	lockdep_assert_held(&rb->lock);
	if (!rb->num_pfns)
		return 0;
	sg_init_one(&sg, rb->pfns, sizeof(rb->pfns[0]) * rb->num_pfns);
	err = revirt_balloon_send(rb, vq, &sg, 1, false);
	if (err)
		rb->stuck = true;
	return err;
}

static void revirt_balloon_add_pfns(struct revirt_balloon *rb,
				    struct page *page)
{
	bool le = revirt_is_little_endian(rb->vdev);
	unsigned long pfn = page_to_pfn(page) * REVIRT_BALLOON_PFNS_PER_PAGE;
	unsigned int i;

	/* The device takes 32-bit frame numbers of 4 KiB pages. */
	for (i = 0; i < REVIRT_BALLOON_PFNS_PER_PAGE; i++)
		rb->pfns[rb->num_pfns++] = __cpu_to_virtio32(le, pfn + i);
}

static void revirt_balloon_set_actual(struct revirt_balloon *rb)
{
	__le32 actual = cpu_to_le32(rb->num_pages);

	/* Balloon config fields are little endian, also on legacy devices. */
	rb->vdev->config->set(rb->vdev,
			      offsetof(struct virtio_balloon_config, actual),
			      &actual, sizeof(actual));
}

/* The host's target, in device pages, rounded to whole guest pages. */
static unsigned int revirt_balloon_target(struct revirt_balloon *rb)
{
	__le32 num_pages;

	rb->vdev->config->get(rb->vdev,
			      offsetof(struct virtio_balloon_config, num_pages),
			      &num_pages, sizeof(num_pages));
	return ALIGN(le32_to_cpu(num_pages), REVIRT_BALLOON_PFNS_PER_PAGE);
}

/*
 * One inflate step: up to @want device pages.  Returns the pages added,
 * or a negative error: -ENOMEM when the guest had no page to give.
 */
static int revirt_balloon_inflate(struct revirt_balloon *rb,
				  unsigned int want)
{
	unsigned int n, added = 0;
	struct page *page;
	LIST_HEAD(pages);
	int err;

	want = min_t(unsigned int, want, REVIRT_BALLOON_STEP);
	want = rounddown(want, REVIRT_BALLOON_PFNS_PER_PAGE);
	/* Allocate outside the lock: compaction may migrate our pages. */
	for (n = 0; n < want; n += REVIRT_BALLOON_PFNS_PER_PAGE) {
		page = balloon_page_alloc();
		if (!page)
			break;
		balloon_page_push(&pages, page);
	}
	if (list_empty(&pages))
		return want ? -ENOMEM : 0;

	mutex_lock(&rb->lock);
	if (rb->stuck) {
		mutex_unlock(&rb->lock);
		while ((page = balloon_page_pop(&pages)))
			put_page(page);
		return -EIO;
	}
	rb->num_pfns = 0;
	while ((page = balloon_page_pop(&pages))) {
		balloon_page_enqueue(&rb->bdi, page);
		revirt_balloon_add_pfns(rb, page);
		/* The guest's MemTotal shrinks by what the host holds. */
		adjust_managed_page_count(page, -1);
		rb->num_pages += REVIRT_BALLOON_PFNS_PER_PAGE;
		added += REVIRT_BALLOON_PFNS_PER_PAGE;
	}
	err = revirt_balloon_tell(rb, rb->inflate_vq);
	revirt_balloon_set_actual(rb);
	mutex_unlock(&rb->lock);
	return err ? err : added;
}

static void revirt_balloon_release(struct list_head *pages)
{
	struct page *page, *next;

	list_for_each_entry_safe(page, next, pages, lru) {
		list_del(&page->lru);
		adjust_managed_page_count(page, 1);
		put_page(page);
	}
}

/*
 * One deflate step of up to @want device pages, under rb->lock.  The host
 * is told, and has answered, before a page goes back to the guest
 * (VIRTIO_BALLOON_F_MUST_TELL_HOST asks for that; the driver always does
 * it).  Returns the pages given back (0 while compaction holds every page
 * left) or a negative error; after an error the pages of the step stay in
 * rb->limbo, out of the guest, until the device is reset.
 */
static int revirt_balloon_deflate_locked(struct revirt_balloon *rb,
					 unsigned int want)
{
	struct page *page;
	LIST_HEAD(pages);
	size_t n;
	int err;

	lockdep_assert_held(&rb->lock);
	if (rb->stuck)
		return -EIO;
	want = min_t(unsigned int, want, REVIRT_BALLOON_STEP);
	n = balloon_page_list_dequeue(&rb->bdi, &pages,
				      want / REVIRT_BALLOON_PFNS_PER_PAGE);
	if (!n)
		return 0;
	rb->num_pfns = 0;
	list_for_each_entry(page, &pages, lru)
		revirt_balloon_add_pfns(rb, page);
	rb->num_pages -= n * REVIRT_BALLOON_PFNS_PER_PAGE;
	err = revirt_balloon_tell(rb, rb->deflate_vq);
	revirt_balloon_set_actual(rb);
	if (err) {
		list_splice(&pages, &rb->limbo);
		return err;
	}
	revirt_balloon_release(&pages);
	return n * REVIRT_BALLOON_PFNS_PER_PAGE;
}

static int revirt_balloon_deflate(struct revirt_balloon *rb,
				  unsigned int want)
{
	int ret;

	mutex_lock(&rb->lock);
	ret = revirt_balloon_deflate_locked(rb, want);
	mutex_unlock(&rb->lock);
	return ret;
}

static void revirt_balloon_paused(struct revirt_balloon *rb)
{
	dev_info_ratelimited(&rb->vdev->dev, "guest short of memory: inflating paused at %u of %u pages, retry in %u ms\n",
			     rb->num_pages, revirt_balloon_target(rb),
			     jiffies_to_msecs(rb->retry));
	revirt_balloon_kick_size(rb, rb->retry);
	rb->retry = min(rb->retry * 2, (unsigned long)REVIRT_BALLOON_RETRY_MAX);
}

/* One step towards the host's target; queued again until it is reached. */
static void revirt_balloon_size_work(struct work_struct *work)
{
	struct revirt_balloon *rb = container_of(to_delayed_work(work),
						 struct revirt_balloon,
						 size_work);
	unsigned int target = revirt_balloon_target(rb);
	unsigned int have = READ_ONCE(rb->num_pages);
	int ret;

	if (READ_ONCE(rb->stuck))
		return;
	if (target > have) {
		if (READ_ONCE(rb->hold))
			return;
		ret = revirt_balloon_inflate(rb, target - have);
		if (ret == -ENOMEM) {
			revirt_balloon_paused(rb);
			return;
		}
		rb->retry = REVIRT_BALLOON_RETRY_MIN;
	} else if (target < have) {
		ret = revirt_balloon_deflate(rb, have - target);
	} else {
		return;
	}
	if (ret > 0)
		revirt_balloon_kick_size(rb, 0);
}

/*
 * DEFLATE_ON_OOM: the OOM killer is about to run; hand pages back instead
 * and keep the balloon from growing again until the host sets a new
 * target.
 */
static int revirt_balloon_oom(struct notifier_block *nb, unsigned long unused,
			      void *parm)
{
	struct revirt_balloon *rb = container_of(nb, struct revirt_balloon,
						 oom_nb);
	unsigned long *freed = parm;
	unsigned int done = 0;
	int ret;

	mutex_lock(&rb->lock);
	rb->hold = true;
	while (done < oom_pages && rb->num_pages) {
		ret = revirt_balloon_deflate_locked(rb, oom_pages - done);
		if (ret <= 0)
			break;
		done += ret;
	}
	mutex_unlock(&rb->lock);
	*freed += done / REVIRT_BALLOON_PFNS_PER_PAGE;
	if (done)
		dev_info_ratelimited(&rb->vdev->dev, "out of memory: gave %u pages back to the guest\n",
				     done);
	return NOTIFY_OK;
}

static void revirt_balloon_stat(struct revirt_balloon *rb, unsigned int *i,
				u16 tag, u64 val)
{
	bool le = revirt_is_little_endian(rb->vdev);

	rb->stats[*i].tag = __cpu_to_virtio16(le, tag);
	rb->stats[*i].val = __cpu_to_virtio64(le, val);
	(*i)++;
}

static unsigned int revirt_balloon_fill_stats(struct revirt_balloon *rb)
{
	unsigned long events[NR_VM_EVENT_ITEMS];
	unsigned int i = 0;
	struct sysinfo si;

	all_vm_events(events);
	si_meminfo(&si);
	revirt_balloon_stat(rb, &i, VIRTIO_BALLOON_S_SWAP_IN,
			    (u64)events[PSWPIN] << PAGE_SHIFT);
	revirt_balloon_stat(rb, &i, VIRTIO_BALLOON_S_SWAP_OUT,
			    (u64)events[PSWPOUT] << PAGE_SHIFT);
	revirt_balloon_stat(rb, &i, VIRTIO_BALLOON_S_MAJFLT,
			    events[PGMAJFAULT]);
	revirt_balloon_stat(rb, &i, VIRTIO_BALLOON_S_MINFLT,
			    events[PGFAULT] - events[PGMAJFAULT]);
	revirt_balloon_stat(rb, &i, VIRTIO_BALLOON_S_MEMFREE,
			    (u64)si.freeram * si.mem_unit);
	revirt_balloon_stat(rb, &i, VIRTIO_BALLOON_S_MEMTOT,
			    (u64)si.totalram * si.mem_unit);
	revirt_balloon_stat(rb, &i, VIRTIO_BALLOON_S_AVAIL,
			    (u64)si_mem_available() << PAGE_SHIFT);
	revirt_balloon_stat(rb, &i, VIRTIO_BALLOON_S_CACHES,
			    (u64)global_node_page_state(NR_FILE_PAGES) << PAGE_SHIFT);
	return i;
}

/* Give the host a statistics buffer; it returns it when it wants fresh ones. */
static int revirt_balloon_post_stats(struct revirt_balloon *rb)
{
	unsigned int n = revirt_balloon_fill_stats(rb);
	struct scatterlist sg;
	int err;

	sg_init_one(&sg, rb->stats, sizeof(rb->stats[0]) * n);
	err = revirt_vq_add_outbuf(rb->stats_vq, &sg, 1, rb, GFP_KERNEL);
	if (!err)
		revirt_vq_kick(rb->stats_vq);
	return err;
}

static void revirt_balloon_stats_work(struct work_struct *work)
{
	struct revirt_balloon *rb = container_of(work, struct revirt_balloon,
						 stats_work);
	unsigned int len;

	if (!revirt_vq_get_buf(rb->stats_vq, &len))
		return;
	if (revirt_balloon_post_stats(rb))
		dev_err_ratelimited(&rb->vdev->dev, "cannot post statistics\n");
}

/* Free page reporting: the host may discard these free pages. */
static int revirt_balloon_report(struct page_reporting_dev_info *pr,
				 struct scatterlist *sg, unsigned int nents)
{
	struct revirt_balloon *rb = container_of(pr, struct revirt_balloon, pr);

	if (READ_ONCE(rb->stuck))
		return -EIO;
	/* The host writes nothing; it only looks at the addresses. */
	return revirt_balloon_send(rb, rb->report_vq, sg, nents, true);
}

static int revirt_balloon_find_vqs(struct revirt_balloon *rb)
{
	struct revirt_device *vdev = rb->vdev;
	struct revirt_virtqueue *vqs[4];
	struct revirt_vq_info info[4] = {
		{ "inflate", revirt_balloon_acked },
		{ "deflate", revirt_balloon_acked },
	};
	unsigned int n = 2, stats = 0, report = 0;
	int err;

	/* Queues of features not negotiated take no number. */
	if (revirt_has_feature(vdev, VIRTIO_BALLOON_F_STATS_VQ)) {
		stats = n++;
		info[stats] = (struct revirt_vq_info){ "stats",
			revirt_balloon_stats_request };
	}
	if (revirt_has_feature(vdev, VIRTIO_BALLOON_F_REPORTING)) {
		report = n++;
		info[report] = (struct revirt_vq_info){ "reporting",
			revirt_balloon_acked };
	}
	err = revirt_find_vqs(vdev, n, vqs, info);
	if (err)
		return err;
	rb->inflate_vq = vqs[0];
	rb->deflate_vq = vqs[1];
	rb->stats_vq = stats ? vqs[stats] : NULL;
	rb->report_vq = report ? vqs[report] : NULL;
	return 0;
}

static int revirt_balloon_migratepage(struct balloon_dev_info *bdi,
				      struct page *newpage, struct page *page,
				      enum migrate_mode mode)
{
	struct revirt_balloon *rb = container_of(bdi, struct revirt_balloon,
						 bdi);
	unsigned long flags;
	int err;

	/* Inflating may be what triggered compaction: never wait here. */
	if (!mutex_trylock(&rb->lock))
		return -EAGAIN;
	if (rb->stuck || READ_ONCE(rb->stopping)) {
		mutex_unlock(&rb->lock);
		return -EAGAIN;
	}
	get_page(newpage);
	if (page_zone(page) != page_zone(newpage)) {
		adjust_managed_page_count(page, 1);
		adjust_managed_page_count(newpage, -1);
	}
	spin_lock_irqsave(&bdi->pages_lock, flags);
	balloon_page_insert(bdi, newpage);
	bdi->isolated_pages--;
	revirt_count_balloon_migrate();
	spin_unlock_irqrestore(&bdi->pages_lock, flags);

	rb->num_pfns = 0;
	revirt_balloon_add_pfns(rb, newpage);
	err = revirt_balloon_tell(rb, rb->inflate_vq);
	rb->num_pfns = 0;
	revirt_balloon_add_pfns(rb, page);
	if (!err)
		err = revirt_balloon_tell(rb, rb->deflate_vq);
	mutex_unlock(&rb->lock);
	if (err)
		dev_warn_ratelimited(&rb->vdev->dev, "migrating a balloon page: host did not answer (%d)\n",
				     err);

	/* The old page leaves the balloon; the allocator gets it back. */
	balloon_page_finalize(page);
	put_page(page);
	return MIGRATEPAGE_SUCCESS;
}

static void revirt_balloon_stop(struct revirt_balloon *rb)
{
	spin_lock_irq(&rb->stop_lock);
	rb->stopping = true;
	spin_unlock_irq(&rb->stop_lock);
	if (rb->pr_registered)
		page_reporting_unregister(&rb->pr);
	if (rb->oom_registered)
		unregister_oom_notifier(&rb->oom_nb);
	cancel_delayed_work_sync(&rb->size_work);
	cancel_work_sync(&rb->stats_work);
}

/*
 * Hand every page back, telling the host step by step.  A page that
 * compaction isolated comes back to the list soon (migration fails while
 * rb->lock is not free, or while stopping): wait for it, bounded.
 */
static void revirt_balloon_empty(struct revirt_balloon *rb)
{
	unsigned int waits = 0;
	int ret;

	mutex_lock(&rb->lock);
	while (rb->num_pages) {
		ret = revirt_balloon_deflate_locked(rb, REVIRT_BALLOON_STEP);
		if (ret < 0)
			break;
		if (ret)
			continue;
		if (++waits > REVIRT_BALLOON_ISOLATED_WAITS)
			break;
		mutex_unlock(&rb->lock);
		msleep(20);
		mutex_lock(&rb->lock);
	}
	mutex_unlock(&rb->lock);
}

/*
 * After the reset the host uses no page any more: pages it never
 * acknowledged return to the guest.
 */
static void revirt_balloon_reclaim(struct revirt_balloon *rb)
{
	balloon_page_list_dequeue(&rb->bdi, &rb->limbo, UINT_MAX);
	if (!list_empty(&rb->limbo))
		dev_warn(&rb->vdev->dev, "host did not acknowledge the return of every page; the reset returned them\n");
	if (rb->bdi.isolated_pages)
		dev_err(&rb->vdev->dev, "%lu balloon pages still isolated by compaction; they stay lost to the guest\n",
			rb->bdi.isolated_pages);
	revirt_balloon_release(&rb->limbo);
	rb->num_pages = 0;
}

static void revirt_balloon_teardown(struct revirt_balloon *rb)
{
	struct revirt_device *vdev = rb->vdev;

	revirt_balloon_stop(rb);
	revirt_balloon_empty(rb);
	/* Only now: the host saw actual reach 0 before the reset. */
	revirt_reset_device(vdev);
	while (revirt_vq_detach_unused_buf(rb->inflate_vq))
		;
	while (revirt_vq_detach_unused_buf(rb->deflate_vq))
		;
	if (rb->stats_vq)
		while (revirt_vq_detach_unused_buf(rb->stats_vq))
			;
	if (rb->report_vq)
		while (revirt_vq_detach_unused_buf(rb->report_vq))
			;
	revirt_del_vqs(vdev);
	revirt_balloon_reclaim(rb);
}

static int revirt_balloon_start(struct revirt_balloon *rb)
{
	struct revirt_device *vdev = rb->vdev;
	int err;

	if (rb->stats_vq) {
		err = revirt_balloon_post_stats(rb);
		if (err)
			return err;
	}
	if (revirt_has_feature(vdev, VIRTIO_BALLOON_F_DEFLATE_ON_OOM)) {
		rb->oom_nb.notifier_call = revirt_balloon_oom;
		err = register_oom_notifier(&rb->oom_nb);
		if (err)
			return err;
		rb->oom_registered = true;
	}
	if (rb->report_vq) {
		rb->pr.report = revirt_balloon_report;
		err = page_reporting_register(&rb->pr);
		if (err)
			dev_warn(&vdev->dev, "free page reporting unavailable (%d): another device reports\n",
				 err);
		else
			rb->pr_registered = true;
	}
	revirt_balloon_kick_size(rb, 0);
	return 0;
}

static int revirt_balloon_probe(struct revirt_device *vdev)
{
	struct revirt_balloon *rb;
	int err;

	rb = kzalloc(sizeof(*rb), GFP_KERNEL);
	if (!rb)
		return -ENOMEM;
	rb->vdev = vdev;
	vdev->priv = rb;
	init_waitqueue_head(&rb->acked);
	INIT_DELAYED_WORK(&rb->size_work, revirt_balloon_size_work);
	INIT_WORK(&rb->stats_work, revirt_balloon_stats_work);
	spin_lock_init(&rb->stop_lock);
	mutex_init(&rb->lock);
	balloon_devinfo_init(&rb->bdi);
	INIT_LIST_HEAD(&rb->limbo);
	rb->bdi.migratepage = revirt_balloon_migratepage;
	rb->retry = REVIRT_BALLOON_RETRY_MIN;

	err = revirt_balloon_find_vqs(rb);
	if (err)
		goto free;

	/* The queues are used from here on: the device must be live. */
	revirt_device_ready(vdev);
	revirt_balloon_set_actual(rb);
	err = revirt_balloon_start(rb);
	if (err)
		goto teardown;
	return 0;

teardown:
	revirt_balloon_teardown(rb);
free:
	vdev->priv = NULL;
	kfree(rb);
	return err;
}

static void revirt_balloon_remove(struct revirt_device *vdev)
{
	struct revirt_balloon *rb = vdev->priv;

	if (!rb)
		return;		/* a restore that failed left nothing */
	revirt_balloon_teardown(rb);
	vdev->priv = NULL;
	kfree(rb);
}

/*
 * A message waiting for the host ends now with -EIO (its queue is broken)
 * instead of after REVIRT_BALLOON_TIMEOUT, so remove does not wait for it.
 */
static void revirt_balloon_device_gone(struct revirt_device *vdev)
{
	struct revirt_balloon *rb = vdev->priv;

	if (rb)
		wake_up_all(&rb->acked);
}

static void revirt_balloon_config_changed(struct revirt_device *vdev)
{
	struct revirt_balloon *rb = vdev->priv;

	WRITE_ONCE(rb->hold, false);
	revirt_balloon_kick_size(rb, 0);
}

static const unsigned int revirt_balloon_features[] = {
	VIRTIO_BALLOON_F_MUST_TELL_HOST,
	VIRTIO_BALLOON_F_STATS_VQ,
	VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
	VIRTIO_BALLOON_F_REPORTING,
};

/*
 * System sleep and function resets: remove and probe, which already reset
 * the device and set it up from nothing.  The pages go back to the guest
 * first, as on remove; the balloon is inflated again to the target the
 * restore reads.
 */
static int revirt_balloon_freeze(struct revirt_device *vdev)
{
	revirt_balloon_remove(vdev);
	return 0;
}

static int revirt_balloon_restore(struct revirt_device *vdev)
{
	int err = revirt_renegotiate(vdev);

	return err ? err : revirt_balloon_probe(vdev);
}

static const struct revirt_device_id revirt_balloon_ids[] = {
	{ VIRTIO_ID_BALLOON, REVIRT_DEV_ANY_ID },
	{ }
};

static struct revirt_driver revirt_balloon_driver = {
	.driver.name = KBUILD_MODNAME,
	.id_table = revirt_balloon_ids,
	.feature_table = revirt_balloon_features,
	.feature_table_size = ARRAY_SIZE(revirt_balloon_features),
	.probe = revirt_balloon_probe,
	.remove = revirt_balloon_remove,
	.freeze = revirt_balloon_freeze,
	.restore = revirt_balloon_restore,
	.device_gone = revirt_balloon_device_gone,
	.config_changed = revirt_balloon_config_changed,
};

module_revirt_driver(revirt_balloon_driver);
REVIRT_MODULE_ALIAS(00000005);
MODULE_DESCRIPTION("revirt: virtio memory balloon");
MODULE_LICENSE("GPL");
