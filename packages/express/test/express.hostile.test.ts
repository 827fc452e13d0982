import express from 'express';
import { describeHostileContract } from '../../../test/hostile-contract.js';
import { expressHarness } from './harness.js';

describeHostileContract(expressHarness('express 5', express));
