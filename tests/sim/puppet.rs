//! A puppet member for the simulated network: the test holds a node's key and
//! session itself and sends whatever messages it likes over an authenticated
//! session (records with bad signatures, an empty digest, a spoofed source):
//! what a compromised member's modified daemon could send.

use super::SimNet;
use meshd::crypto::{self, HandshakeResponse, Session};
use meshd::keys::PrivateKey;
use meshd::name::NodeName;
use meshd::wire::Message;
use rand::SeedableRng;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// A member whose daemon is the test.
pub struct Puppet {
    pub name: String,
    pub addr: SocketAddr,
    session: Session,
}

impl Puppet {
    /// Handshakes as `name` (a sim slot that is never started; `target`
    /// holds its host file) with `target`, capturing the response.
    pub fn connect(net: &mut SimNet, name: &str, target: &str) -> Puppet {
        let (me, to) = (net.idx(name), net.idx(target));
        let key = PrivateKey::from_pem_str(&net.nodes[me].key.to_pem_string()).expect("key");
        let target_key = net.nodes[to].key.public();
        let addr = net.nodes[me].addr;
        let seen: Rc<RefCell<Vec<Vec<u8>>>> = Rc::new(RefCell::new(Vec::new()));
        let log = seen.clone();
        let old_tap = net.tap.take();
        net.tap = Some(Box::new(move |from, dest, payload| {
            if from == to && dest == me {
                log.borrow_mut().push(payload.to_vec());
            }
            true
        }));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
        let (mut state, init) = crypto::initiate(
            &key,
            &NodeName::new(name).expect("name"),
            &NodeName::new(target).expect("name"),
            *target_key.as_bytes(),
            0x5eed,
            1_900_000_000_000_000_000,
            &mut rng,
        )
        .expect("init");
        net.inject(target, addr, init);
        net.run_for(Duration::from_millis(10));
        net.tap = old_tap;
        let response = seen
            .borrow()
            .iter()
            .find(|p| HandshakeResponse::parse(p).is_ok())
            .cloned()
            .expect("the target did not answer the puppet's handshake");
        let session = state.complete(&response, net.now).expect("handshake");
        let mut puppet = Puppet {
            name: name.to_string(),
            addr,
            session,
        };
        // The first data packet confirms the session at the target.
        let hello = meshd::wire::Hello {
            sent_us: 1,
            echo_us: 0,
            echo_delay_us: 0,
            flags: 0,
        };
        puppet.send(net, target, addr, &Message::Hello(hello));
        puppet
    }

    /// Seals `msg` and delivers it to `target` as if from `from`.
    pub fn send(&mut self, net: &mut SimNet, target: &str, from: SocketAddr, msg: &Message<'_>) {
        let mut out = Vec::new();
        self.session
            .seal_with(&mut out, |buf| msg.emit(buf))
            .expect("seal");
        net.inject(target, from, out);
    }
}
