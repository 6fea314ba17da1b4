package main

// seenBlockBits is log2 of the number of seqs one seenBlock covers: 512
// seqs, 64 bytes, a cache line.
const seenBlockBits = 9

// seenBlock is a bitset of 1<<seenBlockBits consecutive seqs of one
// conversation.
type seenBlock [1 << seenBlockBits / 64]uint64

// seenSet is a set of messages (msgKeys). A map with an entry per message
// grew to hundreds of thousands of entries for admin connections and its
// operations cost several percent of chatbench's CPU. A conversation's seqs
// are dense, so seenSet keeps a bit per seq, in blocks of 512 consecutive
// seqs found through a small map: one lookup in a map of a few thousand
// entries at most and a bit test per operation. It holds any int64 seq (a
// sparse or negative one just costs a block). The zero value is empty and
// ready to use.
type seenSet struct {
	blocks map[msgKey]*seenBlock // key: conversation, seq >> seenBlockBits
	n      int                   // messages in the set
}

// locate returns where k's bit is: the key of its block, the word of the
// block and the bit within the word.
func locate(k msgKey) (block msgKey, word int, bit uint64) {
	off := uint64(k.seq) & (1<<seenBlockBits - 1) // the same for negative seqs: two's complement
	return msgKey{k.conv, k.seq >> seenBlockBits}, int(off / 64), 1 << (off % 64)
}

// add adds k and reports whether it was new.
func (s *seenSet) add(k msgKey) bool {
	key, w, bit := locate(k)
	b := s.blocks[key]
	if b == nil {
		if s.blocks == nil {
			s.blocks = map[msgKey]*seenBlock{}
		}
		b = new(seenBlock)
		s.blocks[key] = b
	}
	if b[w]&bit != 0 {
		return false
	}
	b[w] |= bit
	s.n++
	return true
}

// has reports whether k is in the set.
func (s *seenSet) has(k msgKey) bool {
	key, w, bit := locate(k)
	b := s.blocks[key]
	return b != nil && b[w]&bit != 0
}

// len is how many messages the set holds.
func (s *seenSet) len() int { return s.n }
