import express from 'express';
import { describeAdapterContract } from '../../../test/adapter-contract.js';
import { expressHarness } from './harness.js';

describeAdapterContract(expressHarness('express 5', express));
