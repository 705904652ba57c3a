// SPDX-License-Identifier: GPL-2.0-only
/*
 * revirt console driver: a virtio console's ports as hvc ttys and as
 * character devices /dev/rvportNpM, kept across every reset of the device.
 *
 * Queues (virtio 1.2, 5.3.2): port 0 receives on queue 0 and transmits on
 * queue 1.  With VIRTIO_CONSOLE_F_MULTIPORT the control queues follow
 * (2: device to driver, 3: driver to device), then port M >= 1 receives on
 * 2M + 2 and transmits on 2M + 3.  Without it port 0 is the only port, a
 * console.
 *
 * Every buffer on a queue is a struct rvcon_buf.  Its owner is the list it
 * is on, if any, or else the ring:
 *  - transmit: what a writer gave is kept on the port's tx_pending list, in
 *    order, until the device used it.  Part of the list is on the ring.  A
 *    reset hands the part on the ring back to the list, and once the device
 *    is set up again the list goes to the new ring first: the bytes the
 *    device had not taken are sent again, exactly once and in order.
 *  - receive: buffers on the ring belong to the ring; a used one moves to
 *    the port's rx_ready list until a reader took all of it, so that what
 *    the device wrote is delivered exactly once, across resets too.
 *  - a port that goes away leaves its buffers on the ring to the ring;
 *    they are freed when the device uses them or when they are taken back
 *    after the next reset.
 *
 * A reset keeps the ports, their ttys and open files: the ports are only
 * "detached" (no queue) until the device adds them again after it is set
 * up (PORT_ADD); the driver then tells the device again that the port is
 * ready and, when a program holds it open, that it is open.
 *
 * Locking: con->lock (irq-safe, as the hvc layer calls in with interrupts
 * off) covers the queues, the port table, every list and every port's
 * state.  con->ctrl_mutex serialises the control messages, adding and
 * removing ports, and the resets.  A port holds a reference to the device
 * state, so that an open file outlives unbind safely.
 */

#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/kref.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/revirt.h>
#include <linux/revirt_ring.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <uapi/linux/virtio_console.h>
#include <uapi/linux/virtio_ids.h>

#include "revirt_compat.h"

#define RVCON_MAX_PORTS		32	/* 66 queues, QEMU offers 31 ports */
#define RVCON_MINORS		1024
#define RVCON_RX_BUFS		16	/* receive buffers per port */
#define RVCON_BUF_SIZE		PAGE_SIZE
#define RVCON_TX_BACKLOG	(64 * 1024)	/* bytes a port keeps unsent */
#define RVCON_CTRL_SIZE		256
#define RVCON_CTRL_BACKLOG	64	/* control messages waiting for room */
#define RVCON_FSYNC_TIMEOUT	(5 * HZ)
#define RVCON_DRAIN_TIMEOUT	(2 * HZ)	/* remove: all ports together */

/* Queue indexes of the layout above. */
#define RVCON_CTRL_RX		2
#define RVCON_CTRL_TX		3

struct rvcon_buf {
	struct list_head node;		/* the owner's list, or empty */
	bool posted;			/* transmit: on the ring now */
	size_t len;			/* bytes of data */
	size_t offset;			/* receive: bytes read already */
	size_t size;			/* room in data */
	u8 data[];
};

struct rvcon;

struct rvcon_port {
	struct device dev;		/* rvportNpM; its release frees */
	struct cdev cdev;
	struct rvcon *con;
	u32 id;
	char *name;			/* from PORT_NAME, under con->lock */
	struct list_head tx_pending;
	size_t tx_bytes;
	struct list_head rx_ready;
	wait_queue_head_t waitq;
	struct mutex read_lock;		/* one reader takes from rx_ready */
	bool attached;			/* the device added it since the reset */
	bool removed;
	bool host_connected;
	bool guest_connected;
	bool console;
	struct hvc_struct *hvc;
	u32 vtermno;
	struct list_head console_node;	/* in rvcon_consoles */
	u64 bytes_sent;
	u64 bytes_received;
};

struct rvcon {
	struct kref kref;		/* the driver's and each port's */
	struct revirt_device *vdev;
	unsigned int index;		/* of vdev, for names */
	spinlock_t lock;		/* see the header comment */
	struct mutex ctrl_mutex;	/* control, ports, resets */
	struct work_struct ctrl_work;
	bool live;			/* queues set up, device running */
	bool dead;			/* the device did not come back */
	bool removing;
	bool multiport;
	u32 nr_ports;
	unsigned int nvqs;
	struct revirt_virtqueue **vqs;
	char (*vq_names)[20];
	struct list_head ctrl_pending;	/* messages waiting for ring room */
	unsigned int ctrl_backlog;
	unsigned int rx_posted[RVCON_MAX_PORTS];	/* buffers on the ring */
	struct rvcon_port *ports[RVCON_MAX_PORTS];
};

static dev_t rvcon_devt;
static DEFINE_IDA(rvcon_minor_ida);
/*
 * hvc may still call in for a terminal it was told to remove while its
 * tty is open; the number is never given to another port, so that such a
 * call finds no port rather than the wrong one.
 */
static atomic_t rvcon_last_vtermno = ATOMIC_INIT(0);
static DEFINE_SPINLOCK(rvcon_consoles_lock);
static LIST_HEAD(rvcon_consoles);

/* ---- buffers and queues ------------------------------------------------- */

static struct rvcon_buf *rvcon_buf_alloc(size_t size, gfp_t gfp)
{
	struct rvcon_buf *buf = kmalloc(struct_size(buf, data, size), gfp);

	if (!buf)
		return NULL;
	INIT_LIST_HEAD(&buf->node);
	buf->posted = false;
	buf->len = 0;
	buf->offset = 0;
	buf->size = size;
	return buf;
}

static void rvcon_buf_free(struct rvcon_buf *buf)
{
	list_del(&buf->node);
	kfree(buf);
}

static unsigned int rvcon_rx_index(u32 id)
{
	return id ? 2 * id + 2 : 0;
}

static u32 rvcon_port_of_index(unsigned int index)
{
	return index < 2 ? 0 : index / 2 - 1;
}

static struct revirt_virtqueue *rvcon_tx_vq(struct rvcon_port *port)
{
	return port->con->vqs[rvcon_rx_index(port->id) + 1];
}

/* The device broke a queue (the ring said how): start over with a reset. */
static void rvcon_check_broken(struct rvcon *con, struct revirt_virtqueue *vq)
{
	if (revirt_vq_is_broken(vq) && con->live)
		revirt_schedule_reset(con->vdev);
}

/* Under con->lock: give the ring a receive buffer, or free it. */
static void rvcon_rx_give(struct rvcon *con, u32 id, struct rvcon_buf *buf)
{
	struct revirt_virtqueue *vq = con->vqs[rvcon_rx_index(id)];
	struct scatterlist sg;

	if (!con->live || con->rx_posted[id] >= RVCON_RX_BUFS) {
		rvcon_buf_free(buf);
		return;
	}
	sg_init_one(&sg, buf->data, buf->size);
	if (revirt_vq_add_inbuf(vq, &sg, 1, buf, GFP_ATOMIC)) {
		rvcon_buf_free(buf);
		return;
	}
	con->rx_posted[id]++;
	revirt_vq_kick(vq);
}

/* Under con->lock: fill port @id's receive queue. */
static void rvcon_rx_fill(struct rvcon *con, u32 id)
{
	struct rvcon_buf *buf;

	while (con->live && con->rx_posted[id] < RVCON_RX_BUFS) {
		buf = rvcon_buf_alloc(RVCON_BUF_SIZE, GFP_ATOMIC);
		if (!buf)
			return;
		rvcon_rx_give(con, id, buf);
	}
}

/* Under con->lock: the device may transmit what the port holds. */
static bool rvcon_tx_open(const struct rvcon_port *port)
{
	/* A console writes whether or not anyone listens, as a UART does. */
	return port->con->live && port->attached &&
	       (port->host_connected || port->console);
}

/* Under con->lock: put the port's unsent buffers on the ring, in order. */
static void rvcon_tx_flush(struct rvcon_port *port)
{
	struct revirt_virtqueue *vq;
	struct rvcon_buf *buf;
	struct scatterlist sg;
	bool added = false;

	if (!rvcon_tx_open(port))
		return;
	vq = rvcon_tx_vq(port);
	list_for_each_entry(buf, &port->tx_pending, node) {
		if (buf->posted)
			continue;
		sg_init_one(&sg, buf->data, buf->len);
		if (revirt_vq_add_outbuf(vq, &sg, 1, buf, GFP_ATOMIC))
			break;
		buf->posted = true;
		added = true;
	}
	if (added)
		revirt_vq_kick(vq);
}

/* ---- control queue ------------------------------------------------------ */

/* Under con->lock: a control receive buffer back to the device. */
static void rvcon_ctrl_give(struct rvcon *con, struct rvcon_buf *buf)
{
	struct revirt_virtqueue *vq = con->vqs[RVCON_CTRL_RX];
	struct scatterlist sg;

	if (!con->live) {
		rvcon_buf_free(buf);
		return;
	}
	sg_init_one(&sg, buf->data, buf->size);
	if (revirt_vq_add_inbuf(vq, &sg, 1, buf, GFP_ATOMIC))
		rvcon_buf_free(buf);
	else
		revirt_vq_kick(vq);
}

static void rvcon_ctrl_post(struct rvcon *con)
{
	struct revirt_virtqueue *vq = con->vqs[RVCON_CTRL_TX];
	struct rvcon_buf *msg, *tmp;
	struct scatterlist sg;
	bool added = false;

	list_for_each_entry_safe(msg, tmp, &con->ctrl_pending, node) {
		sg_init_one(&sg, msg->data, msg->len);
		if (revirt_vq_add_outbuf(vq, &sg, 1, msg, GFP_ATOMIC))
			break;
		list_del_init(&msg->node);
		con->ctrl_backlog--;
		added = true;
	}
	if (added)
		revirt_vq_kick(vq);
}

/*
 * Under con->lock: tell the device something.  Messages go out in order;
 * those for which the ring has no room wait for the device to use some.
 * Nothing is sent while the device is not running: after the reset the
 * driver tells it its whole state again.
 */
static void rvcon_ctrl_send(struct rvcon *con, u32 id, u16 event, u16 value)
{
	struct revirt_device *vdev = con->vdev;
	struct virtio_console_control *c;
	struct rvcon_buf *msg;

	if (!con->live || !con->multiport)
		return;
	if (con->ctrl_backlog >= RVCON_CTRL_BACKLOG) {
		dev_err_ratelimited(&vdev->dev, "revirt_console: the device takes no control messages; event %u for port %u dropped\n",
				    event, id);
		return;
	}
	msg = rvcon_buf_alloc(sizeof(*c), GFP_ATOMIC);
	if (!msg)
		return;
	c = (struct virtio_console_control *)msg->data;
	c->id = __cpu_to_virtio32(revirt_is_little_endian(vdev), id);
	c->event = __cpu_to_virtio16(revirt_is_little_endian(vdev), event);
	c->value = __cpu_to_virtio16(revirt_is_little_endian(vdev), value);
	msg->len = sizeof(*c);
	list_add_tail(&msg->node, &con->ctrl_pending);
	con->ctrl_backlog++;
	rvcon_ctrl_post(con);
}

/* Under con->lock: free the messages the device took. */
static void rvcon_ctrl_tx_collect(struct rvcon *con,
				  struct revirt_virtqueue *vq)
{
	struct rvcon_buf *msg;
	unsigned int len;

	while ((msg = revirt_vq_get_buf(vq, &len)))
		rvcon_buf_free(msg);
}

static void rvcon_ctrl_tx_done(struct revirt_virtqueue *vq)
{
	struct rvcon *con = vq->vdev->priv;
	unsigned long flags;

	spin_lock_irqsave(&con->lock, flags);
	rvcon_ctrl_tx_collect(con, vq);
	if (con->live)
		rvcon_ctrl_post(con);
	rvcon_check_broken(con, vq);
	spin_unlock_irqrestore(&con->lock, flags);
}

static void rvcon_ctrl_rx_done(struct revirt_virtqueue *vq)
{
	struct rvcon *con = vq->vdev->priv;

	schedule_work(&con->ctrl_work);
}

/* ---- data queues -------------------------------------------------------- */

/*
 * Under con->lock: take what the device wrote into a receive queue.
 * Returns true if a console has new input.
 */
static bool rvcon_rx_collect(struct rvcon *con, struct revirt_virtqueue *vq)
{
	u32 id = rvcon_port_of_index(vq->index);
	struct rvcon_port *port = con->ports[id];
	struct rvcon_buf *buf;
	bool console = false;
	unsigned int len;

	while ((buf = revirt_vq_get_buf(vq, &len))) {
		con->rx_posted[id]--;
		if (!port) {
			rvcon_buf_free(buf);
			continue;
		}
		/* The ring refused lengths beyond the buffer; stay inside it. */
		buf->len = min_t(size_t, len, buf->size);
		buf->offset = 0;	/* a buffer read before comes back */
		if (!buf->len) {
			rvcon_rx_give(con, id, buf);
			continue;
		}
		list_add_tail(&buf->node, &port->rx_ready);
		port->bytes_received += buf->len;
		console |= port->console;
	}
	if (port)
		wake_up_interruptible(&port->waitq);
	return console;
}

/*
 * Under con->lock: free what the device used of a transmit queue, and
 * give it more.  Returns true if a console has room again.
 */
static bool rvcon_tx_collect(struct rvcon *con, struct revirt_virtqueue *vq)
{
	struct rvcon_port *port = con->ports[rvcon_port_of_index(vq->index)];
	struct rvcon_buf *buf;
	bool console = false;
	unsigned int len;

	while ((buf = revirt_vq_get_buf(vq, &len))) {
		/* A buffer of a port that went away is the ring's alone. */
		if (port && !list_empty(&buf->node)) {
			port->tx_bytes -= buf->len;
			port->bytes_sent += buf->len;
			console |= port->console;
		}
		rvcon_buf_free(buf);
	}
	if (port) {
		rvcon_tx_flush(port);
		wake_up_interruptible(&port->waitq);
	}
	return console;
}

static void rvcon_data_done(struct revirt_virtqueue *vq)
{
	struct rvcon *con = vq->vdev->priv;
	unsigned long flags;
	bool kick;

	spin_lock_irqsave(&con->lock, flags);
	if (vq->index & 1)
		kick = rvcon_tx_collect(con, vq);
	else
		kick = rvcon_rx_collect(con, vq);
	rvcon_check_broken(con, vq);
	spin_unlock_irqrestore(&con->lock, flags);
	if (kick)
		hvc_kick();
}

/* ---- ports: reading and writing ----------------------------------------- */

/* Under con->lock: a reader has something to return now. */
static bool rvcon_readable(const struct rvcon_port *port)
{
	return !list_empty(&port->rx_ready) || port->removed ||
	       port->con->dead || !port->host_connected;
}

static bool rvcon_writable(const struct rvcon_port *port)
{
	return port->removed || port->con->dead ||
	       (port->host_connected && port->tx_bytes < RVCON_TX_BACKLOG);
}

static bool rvcon_locked(struct rvcon_port *port,
			 bool (*test)(const struct rvcon_port *port))
{
	unsigned long flags;
	bool ret;

	spin_lock_irqsave(&port->con->lock, flags);
	ret = test(port);
	spin_unlock_irqrestore(&port->con->lock, flags);
	return ret;
}

static int rvcon_wait(struct rvcon_port *port,
		      bool (*test)(const struct rvcon_port *port))
{
	return wait_event_interruptible(port->waitq, rvcon_locked(port, test));
}

/*
 * Under con->lock: a receive buffer read to its end goes back to the
 * device (or is freed if the port has no queue now).
 */
static void rvcon_rx_consumed(struct rvcon_port *port, struct rvcon_buf *buf)
{
	list_del_init(&buf->node);
	if (port->attached && !port->removed)
		rvcon_rx_give(port->con, port->id, buf);
	else
		rvcon_buf_free(buf);
}

/* Under con->lock: copy up to @count received bytes into @dst. */
static size_t rvcon_rx_take(struct rvcon_port *port, u8 *dst, size_t count)
{
	struct rvcon_buf *buf, *tmp;
	size_t done = 0, n;

	list_for_each_entry_safe(buf, tmp, &port->rx_ready, node) {
		if (done == count)
			break;
		n = min(count - done, buf->len - buf->offset);
		memcpy(dst + done, buf->data + buf->offset, n);
		buf->offset += n;
		done += n;
		if (buf->offset == buf->len)
			rvcon_rx_consumed(port, buf);
	}
	return done;
}

static ssize_t rvcon_read(struct file *file, char __user *ubuf, size_t count,
			  loff_t *ppos)
{
	struct rvcon_port *port = file->private_data;
	struct rvcon *con = port->con;
	unsigned long flags;
	bool eof;
	size_t n = 0;
	u8 *bounce;
	int err;

	if (!count)
		return 0;
	count = min_t(size_t, count, RVCON_BUF_SIZE);
	bounce = kmalloc(count, GFP_KERNEL);
	if (!bounce)
		return -ENOMEM;
	err = mutex_lock_interruptible(&port->read_lock);
	if (err)
		goto free;
	for (;;) {
		spin_lock_irqsave(&con->lock, flags);
		n = rvcon_rx_take(port, bounce, count);
		if (!n && port->removed)
			err = -ENODEV;
		else if (!n && con->dead)
			err = -EIO;
		eof = !n && !port->host_connected;
		spin_unlock_irqrestore(&con->lock, flags);
		if (n || err || eof)
			break;
		if (file->f_flags & O_NONBLOCK) {
			err = -EAGAIN;
			break;
		}
		err = rvcon_wait(port, rvcon_readable);
		if (err)
			break;
	}
	mutex_unlock(&port->read_lock);
	if (n && copy_to_user(ubuf, bounce, n))
		err = -EFAULT;
free:
	kfree(bounce);
	if (err == -ENODEV)
		return 0;	/* the port went away: end of file */
	return err ? err : n;
}

/* Queue one chunk of a write; the bytes are the port's from now on. */
static int rvcon_tx_queue(struct rvcon_port *port, struct rvcon_buf *buf)
{
	struct rvcon *con = port->con;
	unsigned long flags;
	int err = 0;

	spin_lock_irqsave(&con->lock, flags);
	if (port->removed) {
		err = -ENODEV;
	} else if (con->dead) {
		err = -EIO;
	} else {
		list_add_tail(&buf->node, &port->tx_pending);
		port->tx_bytes += buf->len;
		rvcon_tx_flush(port);
	}
	spin_unlock_irqrestore(&con->lock, flags);
	return err;
}

static ssize_t rvcon_write(struct file *file, const char __user *ubuf,
			   size_t count, loff_t *ppos)
{
	struct rvcon_port *port = file->private_data;
	struct rvcon_buf *buf;
	size_t done = 0, n;
	int err = 0;

	while (done < count) {
		if (!rvcon_locked(port, rvcon_writable)) {
			if (done)
				break;
			if (file->f_flags & O_NONBLOCK)
				return -EAGAIN;
			err = rvcon_wait(port, rvcon_writable);
			if (err)
				return err;
			continue;
		}
		n = min_t(size_t, count - done, RVCON_BUF_SIZE);
		buf = rvcon_buf_alloc(n, GFP_KERNEL);
		if (!buf) {
			err = -ENOMEM;
			break;
		}
		if (copy_from_user(buf->data, ubuf + done, n)) {
			kfree(buf);
			err = -EFAULT;
			break;
		}
		buf->len = n;
		err = rvcon_tx_queue(port, buf);
		if (err) {
			kfree(buf);
			break;
		}
		done += n;
	}
	return done ? done : err;
}

static __poll_t rvcon_poll(struct file *file, poll_table *wait)
{
	struct rvcon_port *port = file->private_data;
	struct rvcon *con = port->con;
	unsigned long flags;
	__poll_t mask = 0;

	poll_wait(file, &port->waitq, wait);
	spin_lock_irqsave(&con->lock, flags);
	if (port->removed || con->dead) {
		mask = EPOLLHUP | EPOLLERR;
	} else {
		if (!list_empty(&port->rx_ready))
			mask |= EPOLLIN | EPOLLRDNORM;
		if (rvcon_writable(port))
			mask |= EPOLLOUT | EPOLLWRNORM;
		if (!port->host_connected)
			mask |= EPOLLHUP;
	}
	spin_unlock_irqrestore(&con->lock, flags);
	return mask;
}

static bool rvcon_tx_drained(const struct rvcon_port *port)
{
	return list_empty(&port->tx_pending) || port->removed ||
	       port->con->dead;
}

static int rvcon_fsync(struct file *file, loff_t start, loff_t end,
		       int datasync)
{
	struct rvcon_port *port = file->private_data;
	long ret;

	ret = wait_event_interruptible_timeout(port->waitq,
					       rvcon_locked(port, rvcon_tx_drained),
					       RVCON_FSYNC_TIMEOUT);
	if (ret < 0)
		return ret;
	return ret ? 0 : -ETIMEDOUT;
}

/* Under con->lock: receive data left unread by a program that closed. */
static void rvcon_rx_discard(struct rvcon_port *port)
{
	struct rvcon_buf *buf, *tmp;

	list_for_each_entry_safe(buf, tmp, &port->rx_ready, node)
		rvcon_rx_consumed(port, buf);
}

static int rvcon_open(struct inode *inode, struct file *file)
{
	struct rvcon_port *port = container_of(inode->i_cdev,
					       struct rvcon_port, cdev);
	struct rvcon *con = port->con;
	unsigned long flags;
	int err = 0;

	get_device(&port->dev);
	spin_lock_irqsave(&con->lock, flags);
	if (port->removed || port->console)
		err = -ENXIO;
	else if (port->guest_connected)
		err = -EBUSY;
	if (!err) {
		port->guest_connected = true;
		if (port->attached)
			rvcon_ctrl_send(con, port->id,
					VIRTIO_CONSOLE_PORT_OPEN, 1);
	}
	spin_unlock_irqrestore(&con->lock, flags);
	if (err) {
		put_device(&port->dev);
		return err;
	}
	file->private_data = port;
	return stream_open(inode, file);
}

static int rvcon_release(struct inode *inode, struct file *file)
{
	struct rvcon_port *port = file->private_data;
	struct rvcon *con = port->con;
	unsigned long flags;

	spin_lock_irqsave(&con->lock, flags);
	port->guest_connected = false;
	rvcon_rx_discard(port);
	if (port->attached && !port->removed)
		rvcon_ctrl_send(con, port->id, VIRTIO_CONSOLE_PORT_OPEN, 0);
	spin_unlock_irqrestore(&con->lock, flags);
	put_device(&port->dev);
	return 0;
}

static const struct file_operations rvcon_fops = {
	.owner = THIS_MODULE,
	.open = rvcon_open,
	.release = rvcon_release,
	.read = rvcon_read,
	.write = rvcon_write,
	.poll = rvcon_poll,
	.fsync = rvcon_fsync,
};

/* ---- console ports (hvc) ------------------------------------------------ */

/* Called with the console list lock: the port of an hvc terminal. */
static struct rvcon_port *rvcon_console_find(u32 vtermno)
{
	struct rvcon_port *port;

	list_for_each_entry(port, &rvcon_consoles, console_node)
		if (port->vtermno == vtermno)
			return port;
	return NULL;
}

/*
 * hvc calls both with its own lock held and interrupts off.  The
 * consoles lock keeps the port (and its device state) from being freed:
 * a port leaves the list before hvc_remove() and before it is freed.
 */
static REVIRT_HVC_RET rvcon_get_chars(u32 vtermno, REVIRT_HVC_CHAR *buf,
				      REVIRT_HVC_COUNT count)
{
	struct rvcon_port *port;
	unsigned long flags;
	size_t n = 0;

	spin_lock_irqsave(&rvcon_consoles_lock, flags);
	port = rvcon_console_find(vtermno);
	if (port) {
		spin_lock(&port->con->lock);
		n = rvcon_rx_take(port, (u8 *)buf, count);
		spin_unlock(&port->con->lock);
	}
	spin_unlock_irqrestore(&rvcon_consoles_lock, flags);
	return n;
}

static REVIRT_HVC_RET rvcon_put_chars(u32 vtermno,
				      const REVIRT_HVC_CHAR *buf,
				      REVIRT_HVC_COUNT count)
{
	struct rvcon_port *port;
	struct rvcon_buf *out;
	unsigned long flags;
	size_t n = 0;

	spin_lock_irqsave(&rvcon_consoles_lock, flags);
	port = rvcon_console_find(vtermno);
	if (!port)
		goto unlock;
	spin_lock(&port->con->lock);
	/* 0 makes hvc keep the bytes and try again after a while. */
	if (port->removed || port->tx_bytes >= RVCON_TX_BACKLOG || count <= 0)
		goto unlock_con;
	out = rvcon_buf_alloc(count, GFP_ATOMIC);
	if (!out)
		goto unlock_con;
	memcpy(out->data, buf, count);
	out->len = count;
	list_add_tail(&out->node, &port->tx_pending);
	port->tx_bytes += count;
	rvcon_tx_flush(port);
	n = count;
unlock_con:
	spin_unlock(&port->con->lock);
unlock:
	spin_unlock_irqrestore(&rvcon_consoles_lock, flags);
	return n;
}

static const struct hv_ops rvcon_hv_ops = {
	.get_chars = rvcon_get_chars,
	.put_chars = rvcon_put_chars,
};

/* Make @port a console: an hvc tty that stays until the port goes. */
static int rvcon_console_init(struct rvcon_port *port)
{
	struct rvcon *con = port->con;
	struct hvc_struct *hvc;
	unsigned long flags;

	port->vtermno = atomic_inc_return(&rvcon_last_vtermno);
	spin_lock_irqsave(&rvcon_consoles_lock, flags);
	list_add_tail(&port->console_node, &rvcon_consoles);
	spin_unlock_irqrestore(&rvcon_consoles_lock, flags);

	/* No interrupt of its own: hvc polls, and hvc_kick() wakes it. */
	hvc = hvc_alloc(port->vtermno, 0, &rvcon_hv_ops, RVCON_BUF_SIZE);
	spin_lock_irqsave(&con->lock, flags);
	if (IS_ERR(hvc)) {
		spin_unlock_irqrestore(&con->lock, flags);
		spin_lock_irqsave(&rvcon_consoles_lock, flags);
		list_del_init(&port->console_node);
		spin_unlock_irqrestore(&rvcon_consoles_lock, flags);
		return PTR_ERR(hvc);
	}
	port->hvc = hvc;
	port->console = true;
	port->guest_connected = true;
	rvcon_ctrl_send(con, port->id, VIRTIO_CONSOLE_PORT_OPEN, 1);
	rvcon_tx_flush(port);
	spin_unlock_irqrestore(&con->lock, flags);
	return 0;
}

static void rvcon_console_exit(struct rvcon_port *port)
{
	unsigned long flags;

	if (!port->hvc)
		return;
	spin_lock_irqsave(&rvcon_consoles_lock, flags);
	list_del_init(&port->console_node);
	spin_unlock_irqrestore(&rvcon_consoles_lock, flags);
	hvc_remove(port->hvc);
	port->hvc = NULL;
}

/* ---- ports: sysfs and lifetime ------------------------------------------ */

static struct rvcon_port *to_rvcon_port(struct device *dev)
{
	return container_of(dev, struct rvcon_port, dev);
}

static ssize_t name_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	struct rvcon_port *port = to_rvcon_port(dev);
	unsigned long flags;
	ssize_t n;

	spin_lock_irqsave(&port->con->lock, flags);
	n = sysfs_emit(buf, "%s\n", port->name ? port->name : "");
	spin_unlock_irqrestore(&port->con->lock, flags);
	return n;
}
static DEVICE_ATTR_RO(name);

/* The flags and counters of a port: one show each, by offset. */
static ssize_t rvcon_show_flag(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct dev_ext_attribute *ea = container_of(attr, typeof(*ea), attr);
	struct rvcon_port *port = to_rvcon_port(dev);
	unsigned long flags;
	bool val;

	spin_lock_irqsave(&port->con->lock, flags);
	val = *(bool *)((u8 *)port + (uintptr_t)ea->var);
	spin_unlock_irqrestore(&port->con->lock, flags);
	return sysfs_emit(buf, "%d\n", val);
}

static ssize_t rvcon_show_count(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	struct dev_ext_attribute *ea = container_of(attr, typeof(*ea), attr);
	struct rvcon_port *port = to_rvcon_port(dev);
	unsigned long flags;
	u64 val;

	spin_lock_irqsave(&port->con->lock, flags);
	val = *(u64 *)((u8 *)port + (uintptr_t)ea->var);
	spin_unlock_irqrestore(&port->con->lock, flags);
	return sysfs_emit(buf, "%llu\n", val);
}

static struct dev_ext_attribute dev_attr_host_connected = {
	__ATTR(host_connected, 0444, rvcon_show_flag, NULL),
	(void *)offsetof(struct rvcon_port, host_connected)
};

static struct dev_ext_attribute dev_attr_guest_connected = {
	__ATTR(guest_connected, 0444, rvcon_show_flag, NULL),
	(void *)offsetof(struct rvcon_port, guest_connected)
};

static struct dev_ext_attribute dev_attr_console = {
	__ATTR(console, 0444, rvcon_show_flag, NULL),
	(void *)offsetof(struct rvcon_port, console)
};

static struct dev_ext_attribute dev_attr_bytes_sent = {
	__ATTR(bytes_sent, 0444, rvcon_show_count, NULL),
	(void *)offsetof(struct rvcon_port, bytes_sent)
};

static struct dev_ext_attribute dev_attr_bytes_received = {
	__ATTR(bytes_received, 0444, rvcon_show_count, NULL),
	(void *)offsetof(struct rvcon_port, bytes_received)
};

static struct attribute *rvcon_port_attrs[] = {
	&dev_attr_name.attr,
	&dev_attr_host_connected.attr.attr,
	&dev_attr_guest_connected.attr.attr,
	&dev_attr_console.attr.attr,
	&dev_attr_bytes_sent.attr.attr,
	&dev_attr_bytes_received.attr.attr,
	NULL
};
ATTRIBUTE_GROUPS(rvcon_port);

static struct class rvcon_class = {
	.name = "revirt-ports",
	.dev_groups = rvcon_port_groups,
};

static void rvcon_free(struct kref *kref)
{
	struct rvcon *con = container_of(kref, struct rvcon, kref);

	kfree(con);
}

static void rvcon_port_release(struct device *dev)
{
	struct rvcon_port *port = to_rvcon_port(dev);

	ida_free(&rvcon_minor_ida, MINOR(dev->devt));
	kfree(port->name);
	kref_put(&port->con->kref, rvcon_free);
	kfree(port);
}

/*
 * Unbind and rmmod of a driver must not lose a byte: what a port received
 * and nobody read yet, and what was written and the device never took,
 * is parked when the driver lets the device go, and the same port of the
 * same device takes it back when a driver binds again.  The device
 * (revirtN) stays registered across a driver's unbind; its parent's name
 * guards against a new device that got the same number.  rmmod of
 * revirt_console drops what is parked.
 */
struct rvcon_parked {
	struct list_head node;		/* in rvcon_parked_list */
	unsigned int index;		/* revirtN */
	const char *parent;		/* the transport's device */
	u32 id;				/* the port */
	struct list_head rx;		/* struct rvcon_buf, as rx_ready */
	struct list_head tx;		/* struct rvcon_buf, as tx_pending */
	size_t tx_bytes;
};

static LIST_HEAD(rvcon_parked_list);
static DEFINE_MUTEX(rvcon_parked_lock);	/* the list */

static void rvcon_parked_free(struct rvcon_parked *pk)
{
	struct rvcon_buf *buf, *tmp;

	list_for_each_entry_safe(buf, tmp, &pk->rx, node)
		rvcon_buf_free(buf);
	list_for_each_entry_safe(buf, tmp, &pk->tx, node)
		rvcon_buf_free(buf);
	list_del(&pk->node);
	kfree_const(pk->parent);
	kfree(pk);
}

/* Under ctrl_mutex, the device reset and reclaimed: keep one port's data. */
static void rvcon_park(struct rvcon *con, struct rvcon_port *port)
{
	struct rvcon_parked *pk;
	unsigned long flags;

	pk = kzalloc(sizeof(*pk), GFP_KERNEL);
	if (pk)
		pk->parent = kstrdup_const(dev_name(con->vdev->dev.parent),
					   GFP_KERNEL);
	spin_lock_irqsave(&con->lock, flags);
	/* From here a writer gets -ENODEV: nothing is added behind our back. */
	port->removed = true;
	if (!pk || !pk->parent ||
	    (list_empty(&port->rx_ready) && list_empty(&port->tx_pending))) {
		spin_unlock_irqrestore(&con->lock, flags);
		if (pk)
			kfree_const(pk->parent);
		kfree(pk);
		return;
	}
	pk->index = con->index;
	pk->id = port->id;
	INIT_LIST_HEAD(&pk->rx);
	INIT_LIST_HEAD(&pk->tx);
	list_splice_init(&port->rx_ready, &pk->rx);
	list_splice_init(&port->tx_pending, &pk->tx);
	pk->tx_bytes = port->tx_bytes;
	port->tx_bytes = 0;
	spin_unlock_irqrestore(&con->lock, flags);
	mutex_lock(&rvcon_parked_lock);
	list_add_tail(&pk->node, &rvcon_parked_list);
	mutex_unlock(&rvcon_parked_lock);
}

static void rvcon_park_all(struct rvcon *con)
{
	u32 id;

	for (id = 0; id < RVCON_MAX_PORTS; id++)
		if (con->ports[id])
			rvcon_park(con, con->ports[id]);
}

/* A new port takes back what its predecessor left. */
static void rvcon_unpark(struct rvcon *con, struct rvcon_port *port)
{
	const char *parent = dev_name(con->vdev->dev.parent);
	struct rvcon_parked *pk, *tmp;
	unsigned long flags;

	mutex_lock(&rvcon_parked_lock);
	list_for_each_entry_safe(pk, tmp, &rvcon_parked_list, node) {
		if (pk->index != con->index || pk->id != port->id ||
		    strcmp(pk->parent, parent))
			continue;
		spin_lock_irqsave(&con->lock, flags);
		list_splice_tail_init(&pk->rx, &port->rx_ready);
		list_splice_tail_init(&pk->tx, &port->tx_pending);
		port->tx_bytes += pk->tx_bytes;
		spin_unlock_irqrestore(&con->lock, flags);
		rvcon_parked_free(pk);
	}
	mutex_unlock(&rvcon_parked_lock);
}

static void rvcon_parked_free_all(void)
{
	struct rvcon_parked *pk, *tmp;

	list_for_each_entry_safe(pk, tmp, &rvcon_parked_list, node)
		rvcon_parked_free(pk);
}

static struct rvcon_port *rvcon_port_create(struct rvcon *con, u32 id)
{
	struct rvcon_port *port;
	int minor, err;

	minor = ida_alloc_max(&rvcon_minor_ida, RVCON_MINORS - 1, GFP_KERNEL);
	if (minor < 0)
		return ERR_PTR(minor);
	port = kzalloc(sizeof(*port), GFP_KERNEL);
	if (!port) {
		ida_free(&rvcon_minor_ida, minor);
		return ERR_PTR(-ENOMEM);
	}
	port->con = con;
	kref_get(&con->kref);
	port->id = id;
	INIT_LIST_HEAD(&port->tx_pending);
	INIT_LIST_HEAD(&port->rx_ready);
	INIT_LIST_HEAD(&port->console_node);
	init_waitqueue_head(&port->waitq);
	mutex_init(&port->read_lock);

	/* From here on the device's release frees the port. */
	device_initialize(&port->dev);
	port->dev.class = &rvcon_class;
	port->dev.parent = &con->vdev->dev;
	port->dev.devt = MKDEV(MAJOR(rvcon_devt), minor);
	port->dev.release = rvcon_port_release;
	cdev_init(&port->cdev, &rvcon_fops);
	port->cdev.owner = THIS_MODULE;
	err = dev_set_name(&port->dev, "rvport%up%u", con->index, id);
	if (!err)
		err = cdev_device_add(&port->cdev, &port->dev);
	if (err) {
		put_device(&port->dev);
		return ERR_PTR(err);
	}
	return port;
}

/* Under con->lock: the port's buffers, when the port goes away. */
static void rvcon_port_drop_buffers(struct rvcon_port *port)
{
	struct rvcon_buf *buf, *tmp;

	list_for_each_entry_safe(buf, tmp, &port->tx_pending, node) {
		if (buf->posted)
			list_del_init(&buf->node);	/* now the ring's */
		else
			rvcon_buf_free(buf);
	}
	port->tx_bytes = 0;
	list_for_each_entry_safe(buf, tmp, &port->rx_ready, node)
		rvcon_buf_free(buf);
}

/* Under ctrl_mutex: the port is gone; open files see the end of it. */
static void rvcon_port_remove(struct rvcon_port *port)
{
	struct rvcon *con = port->con;
	unsigned long flags;

	spin_lock_irqsave(&con->lock, flags);
	con->ports[port->id] = NULL;
	port->removed = true;
	port->attached = false;
	rvcon_port_drop_buffers(port);
	wake_up_interruptible_all(&port->waitq);
	spin_unlock_irqrestore(&con->lock, flags);

	rvcon_console_exit(port);
	cdev_device_del(&port->cdev, &port->dev);
	put_device(&port->dev);
}

/*
 * Under ctrl_mutex and con->lock: the device added the port (again):
 * give it receive buffers and what it has to send, and tell the device
 * its state.
 */
static void rvcon_port_attach(struct rvcon_port *port)
{
	struct rvcon *con = port->con;

	port->attached = true;
	rvcon_rx_fill(con, port->id);
	rvcon_ctrl_send(con, port->id, VIRTIO_CONSOLE_PORT_READY, 1);
	if (port->guest_connected)
		rvcon_ctrl_send(con, port->id, VIRTIO_CONSOLE_PORT_OPEN, 1);
	rvcon_tx_flush(port);
}

/* ---- control messages from the device ----------------------------------- */

static void rvcon_port_add(struct rvcon *con, u32 id)
{
	struct rvcon_port *port;
	unsigned long flags;

	port = con->ports[id];
	if (!port) {
		port = rvcon_port_create(con, id);
		if (IS_ERR(port)) {
			dev_err(&con->vdev->dev, "revirt_console: port %u: cannot add it (%ld)\n",
				id, PTR_ERR(port));
			return;
		}
		rvcon_unpark(con, port);
	} else if (port->attached) {
		dev_err_ratelimited(&con->vdev->dev, "revirt_console: the device adds port %u twice; ignored\n",
				    id);
		return;
	}
	spin_lock_irqsave(&con->lock, flags);
	con->ports[id] = port;
	rvcon_port_attach(port);
	spin_unlock_irqrestore(&con->lock, flags);
}

static void rvcon_port_name(struct rvcon *con, struct rvcon_port *port,
			    const u8 *name, size_t len)
{
	unsigned long flags;
	char *copy, *old;

	copy = kmemdup_nul(name, len, GFP_KERNEL);
	if (!copy)
		return;
	spin_lock_irqsave(&con->lock, flags);
	old = port->name;
	port->name = copy;
	spin_unlock_irqrestore(&con->lock, flags);
	if (!old || strcmp(old, copy))
		kobject_uevent(&port->dev.kobj, KOBJ_CHANGE);
	kfree(old);
}

static void rvcon_port_host_open(struct rvcon *con, struct rvcon_port *port,
				 bool open)
{
	unsigned long flags;

	spin_lock_irqsave(&con->lock, flags);
	port->host_connected = open;
	rvcon_tx_flush(port);
	wake_up_interruptible_all(&port->waitq);
	spin_unlock_irqrestore(&con->lock, flags);
}

/* The events a device sends (the others go the other way). */
static bool rvcon_event_from_device(u16 event)
{
	switch (event) {
	case VIRTIO_CONSOLE_PORT_ADD:
	case VIRTIO_CONSOLE_PORT_REMOVE:
	case VIRTIO_CONSOLE_CONSOLE_PORT:
	case VIRTIO_CONSOLE_RESIZE:
	case VIRTIO_CONSOLE_PORT_OPEN:
	case VIRTIO_CONSOLE_PORT_NAME:
		return true;
	default:
		return false;
	}
}

/* Under ctrl_mutex: one message of @len bytes the device sent. */
static void rvcon_ctrl_handle(struct rvcon *con, const u8 *msg,
			      unsigned int len)
{
	const struct virtio_console_control *c = (const void *)msg;
	struct revirt_device *vdev = con->vdev;
	struct rvcon_port *port;
	u16 event, value;
	u32 id;

	if (len < sizeof(*c)) {
		dev_err_ratelimited(&vdev->dev, "revirt_console: a control message of %u bytes, shorter than its header; ignored\n",
				    len);
		return;
	}
	id = revirt32_to_cpu(vdev, c->id);
	event = revirt16_to_cpu(vdev, c->event);
	value = revirt16_to_cpu(vdev, c->value);
	if (!rvcon_event_from_device(event)) {
		dev_err_ratelimited(&vdev->dev, "revirt_console: unknown control event %u (port %u); ignored\n",
				    event, id);
		return;
	}
	if (id >= con->nr_ports) {
		dev_err_ratelimited(&vdev->dev, "revirt_console: control event %u names port %u, the device has %u; ignored\n",
				    event, id, con->nr_ports);
		return;
	}
	if (event == VIRTIO_CONSOLE_PORT_ADD) {
		rvcon_port_add(con, id);
		return;
	}
	port = con->ports[id];
	if (!port || !port->attached) {
		dev_err_ratelimited(&vdev->dev, "revirt_console: control event %u for port %u, which the device did not add; ignored\n",
				    event, id);
		return;
	}
	switch (event) {
	case VIRTIO_CONSOLE_PORT_REMOVE:
		rvcon_port_remove(port);
		break;
	case VIRTIO_CONSOLE_CONSOLE_PORT:
		if (!port->console && rvcon_console_init(port))
			dev_err(&vdev->dev, "revirt_console: port %u: no hvc console\n",
				id);
		break;
	case VIRTIO_CONSOLE_PORT_OPEN:
		rvcon_port_host_open(con, port, value);
		break;
	case VIRTIO_CONSOLE_PORT_NAME:
		rvcon_port_name(con, port, msg + sizeof(*c), len - sizeof(*c));
		break;
	default:
		/* RESIZE: hvc's resize needs its private lock; not kept. */
		break;
	}
}

static void rvcon_ctrl_work(struct work_struct *work)
{
	struct rvcon *con = container_of(work, struct rvcon, ctrl_work);
	struct revirt_virtqueue *vq;
	struct rvcon_buf *buf;
	unsigned long flags;
	unsigned int len;

	mutex_lock(&con->ctrl_mutex);
	for (;;) {
		spin_lock_irqsave(&con->lock, flags);
		buf = NULL;
		if (con->live && !con->removing) {
			vq = con->vqs[RVCON_CTRL_RX];
			buf = revirt_vq_get_buf(vq, &len);
			if (!buf)
				rvcon_check_broken(con, vq);
		}
		spin_unlock_irqrestore(&con->lock, flags);
		if (!buf)
			break;
		rvcon_ctrl_handle(con, buf->data, min_t(unsigned int, len,
							buf->size));
		spin_lock_irqsave(&con->lock, flags);
		rvcon_ctrl_give(con, buf);
		spin_unlock_irqrestore(&con->lock, flags);
	}
	mutex_unlock(&con->ctrl_mutex);
}

/* ---- setting the device up, and taking it down -------------------------- */

/* How many ports the device has now (1 without MULTIPORT). */
static u32 rvcon_read_nr_ports(struct rvcon *con)
{
	struct revirt_device *vdev = con->vdev;
	u32 nr;

	if (!con->multiport)
		return 1;
	nr = revirt_cread(vdev, offsetof(struct virtio_console_config,
					 max_nr_ports), sizeof(u32));
	if (!nr) {
		dev_err(&vdev->dev, "revirt_console: the device says it has no ports; using port 0\n");
		return 1;
	}
	if (nr > RVCON_MAX_PORTS) {
		dev_warn(&vdev->dev, "revirt_console: the device has %u ports; driving the first %u\n",
			 nr, RVCON_MAX_PORTS);
		return RVCON_MAX_PORTS;
	}
	return nr;
}

static void rvcon_vq_info(struct rvcon *con, unsigned int i,
			  struct revirt_vq_info *info)
{
	if (con->multiport && (i == RVCON_CTRL_RX || i == RVCON_CTRL_TX)) {
		snprintf(con->vq_names[i], sizeof(con->vq_names[i]),
			 "control-%s", i == RVCON_CTRL_RX ? "in" : "out");
		info->callback = i == RVCON_CTRL_RX ? rvcon_ctrl_rx_done :
						     rvcon_ctrl_tx_done;
	} else {
		snprintf(con->vq_names[i], sizeof(con->vq_names[i]), "%s%u",
			 i & 1 ? "output" : "input", rvcon_port_of_index(i));
		info->callback = rvcon_data_done;
	}
	info->name = con->vq_names[i];
}

static int rvcon_init_vqs(struct rvcon *con)
{
	struct revirt_vq_info *info;
	unsigned int i;
	int err = -ENOMEM;

	con->multiport = revirt_has_feature(con->vdev,
					    VIRTIO_CONSOLE_F_MULTIPORT);
	con->nr_ports = rvcon_read_nr_ports(con);
	con->nvqs = con->multiport ? 2 * (con->nr_ports + 1) : 2;
	con->vqs = kcalloc(con->nvqs, sizeof(*con->vqs), GFP_KERNEL);
	con->vq_names = kcalloc(con->nvqs, sizeof(*con->vq_names), GFP_KERNEL);
	info = kcalloc(con->nvqs, sizeof(*info), GFP_KERNEL);
	if (!con->vqs || !con->vq_names || !info)
		goto free;
	for (i = 0; i < con->nvqs; i++)
		rvcon_vq_info(con, i, &info[i]);
	err = revirt_find_vqs(con->vdev, con->nvqs, con->vqs, info);
free:
	kfree(info);
	if (err) {
		kfree(con->vqs);
		kfree(con->vq_names);
		con->vqs = NULL;
		con->vq_names = NULL;
	}
	return err;
}

static void rvcon_del_vqs(struct rvcon *con)
{
	if (!con->vqs)
		return;
	revirt_del_vqs(con->vdev);
	kfree(con->vqs);
	kfree(con->vq_names);
	con->vqs = NULL;
	con->vq_names = NULL;
}

/* Under ctrl_mutex: the device uses no buffer from now on. */
static void rvcon_stop(struct rvcon *con)
{
	unsigned long flags;

	spin_lock_irqsave(&con->lock, flags);
	con->live = false;
	spin_unlock_irqrestore(&con->lock, flags);
}

/* Under con->lock, after a reset: what a transmit queue held goes back. */
static void rvcon_tx_unpost(struct revirt_virtqueue *vq)
{
	struct rvcon_buf *buf;

	while ((buf = revirt_vq_detach_unused_buf(vq))) {
		if (list_empty(&buf->node))
			kfree(buf);		/* a control message, an orphan */
		else
			buf->posted = false;	/* sent again after the reset */
	}
}

/*
 * Under ctrl_mutex, after the reset: first what the device used before it
 * stopped (delivered, not sent again), then the buffers it never used.
 */
static void rvcon_reclaim(struct rvcon *con)
{
	struct rvcon_buf *buf, *tmp;
	struct revirt_virtqueue *vq;
	unsigned long flags;
	unsigned int i;
	bool kick = false;

	spin_lock_irqsave(&con->lock, flags);
	for (i = 0; con->vqs && i < con->nvqs; i++) {
		vq = con->vqs[i];
		if (con->multiport && i == RVCON_CTRL_RX) {
			while ((buf = revirt_vq_detach_unused_buf(vq)))
				kfree(buf);
			continue;
		}
		if (i & 1) {
			if (i != RVCON_CTRL_TX || !con->multiport)
				kick |= rvcon_tx_collect(con, vq);
			else
				rvcon_ctrl_tx_collect(con, vq);
			rvcon_tx_unpost(vq);
		} else {
			kick |= rvcon_rx_collect(con, vq);
			while ((buf = revirt_vq_detach_unused_buf(vq)))
				kfree(buf);
			con->rx_posted[rvcon_port_of_index(i)] = 0;
		}
	}
	/* Messages of the old session: the new one starts from the state. */
	list_for_each_entry_safe(buf, tmp, &con->ctrl_pending, node)
		rvcon_buf_free(buf);
	con->ctrl_backlog = 0;
	for (i = 0; i < RVCON_MAX_PORTS; i++)
		if (con->ports[i])
			con->ports[i]->attached = false;
	spin_unlock_irqrestore(&con->lock, flags);
	if (kick)
		hvc_kick();
}

/* Under ctrl_mutex: ports the device cannot have after a renegotiation. */
static void rvcon_remove_ports_from(struct rvcon *con, u32 first)
{
	u32 id;

	for (id = first; id < RVCON_MAX_PORTS; id++)
		if (con->ports[id])
			rvcon_port_remove(con->ports[id]);
}

/* Without MULTIPORT, port 0 is there from the start, a console. */
static int rvcon_single_port(struct rvcon *con)
{
	struct rvcon_port *port = con->ports[0];
	unsigned long flags;

	if (!port) {
		port = rvcon_port_create(con, 0);
		if (IS_ERR(port))
			return PTR_ERR(port);
		rvcon_unpark(con, port);
	}
	spin_lock_irqsave(&con->lock, flags);
	con->ports[0] = port;
	port->host_connected = true;
	rvcon_port_attach(port);
	spin_unlock_irqrestore(&con->lock, flags);
	return port->console ? 0 : rvcon_console_init(port);
}

/* Under ctrl_mutex: set the queues up and go (probe, and after a reset). */
static int rvcon_start(struct rvcon *con)
{
	unsigned int i, nbufs;
	struct rvcon_buf *buf;
	unsigned long flags;
	int err;

	err = rvcon_init_vqs(con);
	if (err)
		return err;
	rvcon_remove_ports_from(con, con->nr_ports);
	revirt_device_ready(con->vdev);

	spin_lock_irqsave(&con->lock, flags);
	con->live = true;
	con->dead = false;
	/*
	 * A device may drop a control message it has no buffer for (QEMU
	 * does): the whole ring gets one, since the device answers
	 * DEVICE_READY with a message for each of its ports at once.
	 */
	nbufs = con->multiport ?
		revirt_vq_get_vring_size(con->vqs[RVCON_CTRL_RX]) : 0;
	for (i = 0; i < nbufs; i++) {
		buf = rvcon_buf_alloc(RVCON_CTRL_SIZE, GFP_ATOMIC);
		if (!buf)
			break;
		rvcon_ctrl_give(con, buf);
	}
	rvcon_ctrl_send(con, VIRTIO_CONSOLE_BAD_ID,
			VIRTIO_CONSOLE_DEVICE_READY, 1);
	spin_unlock_irqrestore(&con->lock, flags);

	if (!con->multiport)
		return rvcon_single_port(con);
	return 0;
}

/* Under ctrl_mutex: a device that did not come back fails its I/O. */
static void rvcon_mark_dead(struct rvcon *con, int err)
{
	unsigned long flags;
	unsigned int i;

	dev_err(&con->vdev->dev, "revirt_console: the device did not come back from a reset (%d): its ports fail I/O until a reset succeeds\n",
		err);
	spin_lock_irqsave(&con->lock, flags);
	con->live = false;
	con->dead = true;
	for (i = 0; i < RVCON_MAX_PORTS; i++)
		if (con->ports[i])
			wake_up_interruptible_all(&con->ports[i]->waitq);
	spin_unlock_irqrestore(&con->lock, flags);
}

/*
 * Stop with the device reset, its buffers back and its queues deleted: the
 * ports, their ttys and open files stay; what the device had not sent is
 * sent again by rvcon_start_again().  Under ctrl_mutex.
 */
static int rvcon_stop_reset(struct rvcon *con)
{
	int err;

	rvcon_stop(con);
	err = revirt_reset_device(con->vdev);
	rvcon_reclaim(con);
	rvcon_del_vqs(con);
	return err;
}

/* After rvcon_stop_reset() returned @err; under ctrl_mutex. */
static int rvcon_start_again(struct rvcon *con, int err)
{
	if (!err)
		err = revirt_renegotiate(con->vdev);
	if (!err)
		err = rvcon_start(con);
	if (err)
		rvcon_mark_dead(con, err);
	return err;
}

/* The core's reinit operation, under the device lock. */
static int rvcon_reinit(struct revirt_device *vdev)
{
	struct rvcon *con = vdev->priv;
	int err;

	mutex_lock(&con->ctrl_mutex);
	err = rvcon_start_again(con, rvcon_stop_reset(con));
	mutex_unlock(&con->ctrl_mutex);
	return err;
}

/*
 * System sleep and function resets (under the device lock): as a reinit
 * cut in two.  A reset the device did not confirm is found again by the
 * restore's negotiation, so this never fails.
 */
static int rvcon_freeze(struct revirt_device *vdev)
{
	struct rvcon *con = vdev->priv;

	mutex_lock(&con->ctrl_mutex);
	rvcon_stop_reset(con);
	mutex_unlock(&con->ctrl_mutex);
	return 0;
}

static int rvcon_restore(struct revirt_device *vdev)
{
	struct rvcon *con = vdev->priv;
	int err;

	mutex_lock(&con->ctrl_mutex);
	err = rvcon_start_again(con, 0);
	mutex_unlock(&con->ctrl_mutex);
	return err;
}

static void rvcon_teardown(struct rvcon *con);

static int rvcon_probe(struct revirt_device *vdev)
{
	struct rvcon *con;
	int err;

	con = kzalloc(sizeof(*con), GFP_KERNEL);
	if (!con)
		return -ENOMEM;
	kref_init(&con->kref);
	con->vdev = vdev;
	con->index = vdev->index;
	spin_lock_init(&con->lock);
	mutex_init(&con->ctrl_mutex);
	INIT_WORK(&con->ctrl_work, rvcon_ctrl_work);
	INIT_LIST_HEAD(&con->ctrl_pending);
	vdev->priv = con;

	mutex_lock(&con->ctrl_mutex);
	err = rvcon_start(con);
	mutex_unlock(&con->ctrl_mutex);
	if (err)
		goto reset;
	return 0;

reset:
	rvcon_teardown(con);
	return err;
}

/*
 * Before remove resets the device: what writers gave is sent, for a
 * bounded time, so that unbind and rmmod lose no byte write() took from a
 * program while the device and the host take them.
 */
static void rvcon_drain(struct rvcon *con)
{
	unsigned long deadline = jiffies + RVCON_DRAIN_TIMEOUT;
	struct rvcon_port *port;
	unsigned long flags;
	bool waiting;
	u32 id;

	for (id = 0; id < RVCON_MAX_PORTS; id++) {
		spin_lock_irqsave(&con->lock, flags);
		port = con->ports[id];
		waiting = port && !list_empty(&port->tx_pending) &&
			  rvcon_tx_open(port);
		if (waiting)
			get_device(&port->dev);
		spin_unlock_irqrestore(&con->lock, flags);
		if (!waiting)
			continue;
		wait_event_timeout(port->waitq,
				   rvcon_locked(port, rvcon_tx_drained) ||
				   !rvcon_locked(port, rvcon_tx_open),
				   max_t(long, deadline - jiffies, 0));
		put_device(&port->dev);
	}
}

/*
 * Remove, and a probe that failed: send what is pending, quiesce, reset,
 * reclaim, park what is left, take the ports away (open files see the
 * end), delete the queues, free.
 */
static void rvcon_teardown(struct rvcon *con)
{
	struct revirt_device *vdev = con->vdev;
	unsigned long flags;

	rvcon_drain(con);
	spin_lock_irqsave(&con->lock, flags);
	con->removing = true;
	spin_unlock_irqrestore(&con->lock, flags);
	mutex_lock(&con->ctrl_mutex);
	rvcon_stop(con);
	revirt_reset_device(vdev);
	mutex_unlock(&con->ctrl_mutex);
	/* No callback after the reset: nothing schedules the work again. */
	cancel_work_sync(&con->ctrl_work);
	mutex_lock(&con->ctrl_mutex);
	rvcon_reclaim(con);
	rvcon_park_all(con);
	rvcon_remove_ports_from(con, 0);
	mutex_unlock(&con->ctrl_mutex);
	rvcon_del_vqs(con);
	vdev->priv = NULL;
	kref_put(&con->kref, rvcon_free);
}

static void rvcon_remove(struct revirt_device *vdev)
{
	rvcon_teardown(vdev->priv);
}

static const struct revirt_device_id rvcon_ids[] = {
	{ VIRTIO_ID_CONSOLE, REVIRT_DEV_ANY_ID },
	{ }
};

static const unsigned int rvcon_features[] = {
	VIRTIO_CONSOLE_F_MULTIPORT,
};

static struct revirt_driver rvcon_driver = {
	.driver.name = KBUILD_MODNAME,
	.id_table = rvcon_ids,
	.feature_table = rvcon_features,
	.feature_table_size = ARRAY_SIZE(rvcon_features),
	.probe = rvcon_probe,
	.remove = rvcon_remove,
	.reinit = rvcon_reinit,
	.freeze = rvcon_freeze,
	.restore = rvcon_restore,
};

static int __init rvcon_init(void)
{
	int err;

	err = alloc_chrdev_region(&rvcon_devt, 0, RVCON_MINORS, "rvport");
	if (err)
		return err;
	err = class_register(&rvcon_class);
	if (err)
		goto unregister_region;
	err = revirt_register_driver(&rvcon_driver);
	if (err)
		goto unregister_class;
	return 0;

unregister_class:
	class_unregister(&rvcon_class);
unregister_region:
	unregister_chrdev_region(rvcon_devt, RVCON_MINORS);
	return err;
}

static void __exit rvcon_exit(void)
{
	revirt_unregister_driver(&rvcon_driver);
	rvcon_parked_free_all();
	class_unregister(&rvcon_class);
	unregister_chrdev_region(rvcon_devt, RVCON_MINORS);
}

module_init(rvcon_init);
module_exit(rvcon_exit);
REVIRT_MODULE_ALIAS(00000003);
MODULE_DESCRIPTION("revirt: virtio console and serial ports");
MODULE_LICENSE("GPL");
