// A test SMSC on the npm package `smpp` (server mode): accepts transceiver binds with the
// given credentials, answers enquire_link, acknowledges submit_sm with a message id, and
// sends a delivery receipt (deliver_sm) for each. Every PDU it receives is appended to
// the output file as one JSON line, with the time it arrived (ms since the epoch).
//
//   node smsc.js PORT OUTFILE SYSTEM_ID PASSWORD [THROTTLE_FIRST_N] [RECEIPT_STAT]
'use strict';
const fs = require('fs');
const smpp = require('smpp');

const [port, outFile, systemId, password] = process.argv.slice(2, 6);
let throttleLeft = parseInt(process.argv[6] || '0', 10);
const receiptStat = process.argv[7] || 'DELIVRD';
let nextId = 1;
const out = fs.openSync(outFile, 'a');

function record(obj) {
  fs.writeSync(out, JSON.stringify(obj) + '\n');
}

function hex(b) {
  return Buffer.isBuffer(b) ? b.toString('hex') : null;
}

function smppTime(d) {
  const p = (n) => String(n).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) +
    p(d.getUTCHours()) + p(d.getUTCMinutes());
}

const server = smpp.createServer({}, (session) => {
  session.on('bind_transceiver', (pdu) => {
    const ok = pdu.system_id === systemId && pdu.password === password;
    record({t: Date.now(), pdu: 'bind_transceiver', system_id: pdu.system_id,
      system_type: pdu.system_type, ok});
    session.send(pdu.response(ok ? {} : {command_status: smpp.ESME_RBINDFAIL}));
    if (!ok) session.close();
  });
  session.on('enquire_link', (pdu) => {
    record({t: Date.now(), pdu: 'enquire_link'});
    session.send(pdu.response());
  });
  session.on('unbind', (pdu) => {
    record({t: Date.now(), pdu: 'unbind'});
    session.send(pdu.response());
    session.close();
  });
  session.on('deliver_sm_resp', () => {});
  session.on('submit_sm', (pdu) => {
    const sm = pdu.short_message || {};
    const udh = Array.isArray(sm.udh) ? sm.udh.map(hex) : [];
    if (throttleLeft > 0) {
      throttleLeft -= 1;
      record({t: Date.now(), pdu: 'submit_sm', throttled: true,
        destination_addr: pdu.destination_addr});
      session.send(pdu.response({command_status: smpp.ESME_RTHROTTLED}));
      return;
    }
    const id = 'M' + String(nextId++).padStart(8, '0');
    record({t: Date.now(), pdu: 'submit_sm', message_id: id,
      source_addr: pdu.source_addr, source_addr_ton: pdu.source_addr_ton,
      source_addr_npi: pdu.source_addr_npi, destination_addr: pdu.destination_addr,
      dest_addr_ton: pdu.dest_addr_ton, dest_addr_npi: pdu.dest_addr_npi,
      esm_class: pdu.esm_class, data_coding: pdu.data_coding,
      registered_delivery: pdu.registered_delivery, udh,
      message: typeof sm.message === 'string' ? sm.message : null});
    session.send(pdu.response({message_id: id}));
    if (pdu.registered_delivery & 1) {
      const now = smppTime(new Date());
      setTimeout(() => {
        session.deliver_sm({
          source_addr: pdu.destination_addr, destination_addr: pdu.source_addr,
          esm_class: 4,
          short_message: `id:${id} sub:001 dlvrd:001 submit date:${now} done date:${now} ` +
            `stat:${receiptStat} err:000 text:x`,
        });
      }, 20);
    }
  });
  session.on('error', () => {});
});

server.listen(parseInt(port, 10), '127.0.0.1', () => {
  record({t: Date.now(), pdu: 'listening', port: parseInt(port, 10)});
});
