import { expect } from 'chai';
import { maskCardNo, maskEmail, maskName, maskPhone } from '../../domain/masking.js';

/** How many characters of the input a mask still shows. */
const shown = (masked: string) => Array.from(masked).filter((c) => c !== '*').length;

describe('domain/masking', () => {
  describe('maskPhone', () => {
    it('masks the DESIGN example 0988123456 → 0988****456', () => {
      expect(maskPhone('0988123456')).to.equal('0988****456');
    });

    it('keeps the first four and the last three of longer numbers', () => {
      expect(maskPhone('+886988123456')).to.equal('+886****456');
    });

    it('shows only the first two characters of short numbers', () => {
      expect(maskPhone('1234567')).to.equal('12****');
      expect(maskPhone('12')).to.equal('12****');
      expect(maskPhone('1')).to.equal('1****');
    });

    it('hides at least three characters of any number, as the DESIGN example does', () => {
      // distinct characters, so a character missing from the mask is a hidden one
      for (let len = 3; len <= 15; len++) {
        const phone = '1234567890ABCDE'.slice(0, len);
        const masked = maskPhone(phone)!;
        const hidden = Array.from(phone).filter((c) => !masked.includes(c)).length;
        expect(masked, phone).to.contain('****');
        expect(hidden, `${phone} → ${masked}`).to.be.at.least(Math.min(3, len - 2));
      }
    });

    it('passes null and the empty string through', () => {
      expect(maskPhone(null)).to.equal(null);
      expect(maskPhone('')).to.equal('');
    });
  });

  describe('maskEmail', () => {
    it('masks the DESIGN example mia@example.com → mi***@example.com', () => {
      expect(maskEmail('mia@example.com')).to.equal('mi***@example.com');
    });

    it('keeps at most the first two characters of the local part', () => {
      expect(maskEmail('alexander@example.com')).to.equal('al***@example.com');
      expect(maskEmail('a@x.tw')).to.equal('a***@x.tw');
      expect(maskEmail('@x.tw')).to.equal('***@x.tw');
    });

    it('hides everything of a value without @', () => {
      expect(maskEmail('not-an-email')).to.equal('***');
    });

    it('passes null and the empty string through', () => {
      expect(maskEmail(null)).to.equal(null);
      expect(maskEmail('')).to.equal('');
    });
  });

  describe('maskName', () => {
    it('masks the DESIGN example 張小明 → 張**', () => {
      expect(maskName('張小明')).to.equal('張**');
    });

    it('keeps only the first character, one star per hidden character', () => {
      expect(maskName('歐陽小明')).to.equal('歐***');
      expect(maskName('Mia Chen')).to.equal('M*******');
    });

    it('still shows a star for a one-character name', () => {
      expect(maskName('張')).to.equal('張*');
    });

    it('counts characters, not UTF-16 units', () => {
      expect(maskName('𠮷野家')).to.equal('𠮷**');
    });

    it('passes null and the empty string through', () => {
      expect(maskName(null)).to.equal(null);
      expect(maskName('')).to.equal('');
    });
  });

  describe('maskCardNo', () => {
    it('keeps the first four and last four digits of a card number', () => {
      expect(maskCardNo('8801000000001234')).to.equal('8801********1234');
    });

    it('hides the 8 middle digits of every 16-digit card number', () => {
      const masked = maskCardNo('8802123456789012');
      expect(masked).to.have.length(16);
      expect(masked).to.not.contain('12345678');
      expect(shown(masked)).to.equal(8);
    });
  });
});
