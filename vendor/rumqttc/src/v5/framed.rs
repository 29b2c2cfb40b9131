use std::time::Duration;

use futures_util::{FutureExt, SinkExt};
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tokio_util::codec::Framed;

use crate::framed::AsyncReadWrite;

use super::mqttbytes::v5::Packet;
use super::{mqttbytes, Codec, Incoming, MqttState, StateError};

/// Network transforms packets <-> frames efficiently. It takes
/// advantage of pre-allocation, buffering and vectorization when
/// appropriate to achieve performance
pub struct Network {
    /// Frame MQTT packets from network connection
    framed: Framed<Box<dyn AsyncReadWrite>, Codec>,
    /// Maximum readv count
    max_readb_count: usize,
    /// ehs vendored patch: least time between two reads that each found the socket drained.
    read_coalesce: Option<Duration>,
    /// ehs vendored patch: when a read last found no more bytes waiting.
    last_drained: Option<Instant>,
}
impl Network {
    pub fn new(socket: impl AsyncReadWrite + 'static, max_incoming_size: Option<u32>) -> Network {
        let socket = Box::new(socket) as Box<dyn AsyncReadWrite>;
        let codec = Codec {
            max_incoming_size,
            max_outgoing_size: None,
        };
        let framed = Framed::new(socket, codec);

        Network {
            framed,
            max_readb_count: 10,
            read_coalesce: None,
            last_drained: None,
        }
    }

    /// ehs vendored patch: when reads keep draining the socket (a steady stream of small
    /// packets), wait until `coalesce` has passed since the previous drain before reading again,
    /// so one wake-up takes a batch instead of a packet or two. A socket that still holds data
    /// is read without delay; a quiet connection is read as soon as data arrives. The wait
    /// blocks the calling thread: see `MqttOptions::set_read_coalesce`.
    pub fn set_read_coalesce(&mut self, coalesce: Option<Duration>) {
        self.read_coalesce = coalesce.filter(|c| !c.is_zero());
    }

    pub fn set_max_outgoing_size(&mut self, max_outgoing_size: Option<u32>) {
        self.framed.codec_mut().max_outgoing_size = max_outgoing_size;
    }

    /// Reads and returns a single packet from network
    pub async fn read(&mut self) -> Result<Incoming, StateError> {
        match self.framed.next().await {
            Some(Ok(packet)) => Ok(packet),
            Some(Err(mqttbytes::Error::InsufficientBytes(_))) => unreachable!(),
            Some(Err(e)) => Err(StateError::Deserialization(e)),
            None => Err(StateError::ConnectionAborted),
        }
    }

    /// Read packets in bulk. This allow replies to be in bulk. This method is used
    /// after the connection is established to read a bunch of incoming packets
    pub async fn readb(&mut self, state: &mut MqttState) -> Result<(), StateError> {
        // ehs vendored patch: read coalescing, see `set_read_coalesce`. A blocking sleep on
        // purpose: an async one would park the thread in epoll_wait with this socket still
        // registered, and every packet arriving meanwhile would wake it again (measured: 30 000
        // wake-ups per second at 100 000 msg/s instead of 400). Nothing is read before it, so a
        // cancelled select! loses nothing.
        if let (Some(coalesce), Some(drained)) = (self.read_coalesce, self.last_drained) {
            let now = Instant::now();
            let resume = drained + coalesce;
            if now < resume {
                std::thread::sleep(resume - now);
            }
        }
        // wait for the first read
        let mut res = self.framed.next().await;
        let mut count = 1;
        loop {
            match res {
                Some(Ok(packet)) => {
                    if let Some(outgoing) = state.handle_incoming_packet(packet)? {
                        self.write(outgoing).await?;
                    }

                    count += 1;
                    if count >= self.max_readb_count {
                        break;
                    }
                }
                Some(Err(mqttbytes::Error::InsufficientBytes(_))) => unreachable!(),
                Some(Err(e)) => return Err(StateError::Deserialization(e)),
                None => return Err(StateError::ConnectionAborted),
            }
            // do not wait for subsequent reads
            match self.framed.next().now_or_never() {
                Some(r) => res = r,
                _ => {
                    // ehs vendored patch: nothing more waiting on the socket.
                    self.last_drained = Some(Instant::now());
                    break;
                }
            };
        }

        Ok(())
    }

    /// Serializes packet into write buffer
    pub async fn write(&mut self, packet: Packet) -> Result<(), StateError> {
        self.framed
            .feed(packet)
            .await
            .map_err(StateError::Deserialization)
    }

    pub async fn flush(&mut self) -> Result<(), StateError> {
        self.framed
            .flush()
            .await
            .map_err(StateError::Deserialization)
    }
}

/// ehs vendored patch: read coalescing, see `Network::set_read_coalesce`.
#[cfg(test)]
mod ehs_read_coalescing_tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    /// QoS 0 PUBLISH to `t` with payload `x` and no properties.
    const PUBLISH: [u8; 7] = [0x30, 0x05, 0x00, 0x01, b't', 0x00, b'x'];

    async fn connected(coalesce: Duration) -> (Network, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let mut network = Network::new(client.unwrap(), None);
        network.set_read_coalesce(Some(coalesce));
        (network, accepted.unwrap().0)
    }

    fn incoming(state: &mut MqttState) -> usize {
        let count = state.events.len();
        state.events.clear();
        count
    }

    #[tokio::test]
    async fn a_read_after_a_drain_waits_out_the_interval() {
        let coalesce = Duration::from_millis(300);
        let (mut network, mut broker) = connected(coalesce).await;
        let mut state = MqttState::new(10, false);

        broker.write_all(&PUBLISH).await.unwrap();
        network.readb(&mut state).await.unwrap();
        let drained = Instant::now();
        assert_eq!(incoming(&mut state), 1);

        broker.write_all(&PUBLISH).await.unwrap();
        broker.write_all(&PUBLISH).await.unwrap();
        network.readb(&mut state).await.unwrap();
        assert!(
            drained.elapsed() >= coalesce - Duration::from_millis(10),
            "read again after {:?}",
            drained.elapsed()
        );
        // Both packets written during the wait come in one read.
        assert_eq!(incoming(&mut state), 2);
    }

    #[tokio::test]
    async fn a_socket_still_holding_data_is_read_at_once() {
        let coalesce = Duration::from_secs(5);
        let (mut network, mut broker) = connected(coalesce).await;
        let mut state = MqttState::new(10, false);

        // More packets than one `readb` takes, so the first read does not drain the socket.
        let burst: Vec<u8> = PUBLISH.iter().copied().cycle().take(PUBLISH.len() * 15).collect();
        broker.write_all(&burst).await.unwrap();
        let mut received = 0;
        let started = Instant::now();
        while received < 15 {
            network.readb(&mut state).await.unwrap();
            received += incoming(&mut state);
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(received, 15);
    }

    #[tokio::test]
    async fn without_coalescing_a_read_does_not_wait() {
        let (mut network, mut broker) = connected(Duration::ZERO).await;
        let mut state = MqttState::new(10, false);
        broker.write_all(&PUBLISH).await.unwrap();
        network.readb(&mut state).await.unwrap();
        let drained = Instant::now();
        broker.write_all(&PUBLISH).await.unwrap();
        network.readb(&mut state).await.unwrap();
        assert!(drained.elapsed() < Duration::from_secs(2));
        assert_eq!(incoming(&mut state), 2);
    }
}
